/* orion-spawn: a small server Orion's Node process starts once and asks to run each tool, so every child is posix_spawn()ed (vfork-fast) from this small process instead of fork()ed from a large Node heap. */

/*
 * Protocol (all integers little-endian u32 unless noted).
 *
 * Requests, on stdin: u32 length, then `length` bytes of NUL-terminated fields:
 *   "spawn" id cwd argc argv[0..argc) envc env[0..envc)   (numbers in decimal)
 *   "kill"  id signo      kills the child's process group, if the child has not been reaped yet
 * Replies, on stdout: u32 length, then u8 type, u32 id, and a body:
 *   'H' id=protocol version          once, at start
 *   'P' i32 pid                      the child runs
 *   'F' i32 errno                    the child could not be started (ENOENT: no such program)
 *   'O' bytes / 'E' bytes            the child's stdout / stderr
 *   'X' i32 exit code, i32 signal    the child ended (exactly one of them is -1); all its output came before
 * When the child (its process group's leader) ends, the rest of its group is killed before it is reaped,
 * so the group id cannot have been reused. When stdin closes (Node exited, or was killed) the server kills every
 * child's group and exits: a tool nobody waits for any more must not go on writing its outputs (the `orion cc`
 * client whose agent died runs the compiler itself, on the same output path).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROTOCOL_VERSION 1
#define MAX_REQUEST (64u << 20)
#define CHUNK 65536
#define HEADER 9 /* u32 length, u8 type, u32 id */

struct child {
  uint32_t id;
  pid_t pid;
  int fd[2]; /* read ends of the child's stdout and stderr pipes; -1 once at EOF */
};

static struct child *children;
static size_t nchildren, capchildren;

/* Nobody will read our replies any more: kill what still runs and exit. */
static void orphaned(void) {
  for (size_t i = 0; i < nchildren; i++) kill(-children[i].pid, SIGKILL);
  exit(0);
}
static volatile sig_atomic_t got_sigchld;

static void on_sigchld(int sig) {
  (void)sig;
  got_sigchld = 1;
}

static void die(const char *what) {
  fprintf(stderr, "orion-spawn: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void orphaned(void);

static void write_all(const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      orphaned(); /* Node is gone (EPIPE): nobody is left to report to */
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Sends a frame whose body already sits at frame + HEADER. */
static void send_frame(unsigned char *frame, unsigned char type, uint32_t id, size_t body) {
  put_u32(frame, (uint32_t)(1 + 4 + body));
  frame[4] = type;
  put_u32(frame + 5, id);
  write_all(frame, HEADER + body);
}

static void send_ints(unsigned char type, uint32_t id, int a, int b, int count) {
  unsigned char frame[HEADER + 8];
  put_u32(frame + HEADER, (uint32_t)a);
  put_u32(frame + HEADER + 4, (uint32_t)b);
  send_frame(frame, type, id, 4 * (size_t)count);
}

/* Forwards what fd holds; at EOF closes it. Reads at most `rounds` chunks. */
static void pump(struct child *c, int stream, int rounds) {
  static unsigned char frame[HEADER + CHUNK];
  while (c->fd[stream] >= 0 && rounds-- > 0) {
    ssize_t r = read(c->fd[stream], frame + HEADER, CHUNK);
    if (r > 0) {
      send_frame(frame, stream == 0 ? 'O' : 'E', c->id, (size_t)r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    close(c->fd[stream]); /* EOF, or an error no retry fixes */
    c->fd[stream] = -1;
  }
}

/* Reaps every ended child: kills the rest of its group while the zombie still holds the group id, drains its output, reports. */
static void reap(void) {
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return;
    pid_t pid = si.si_pid;
    kill(-pid, SIGKILL); /* a tool's leftover background process; ESRCH when there is none */
    siginfo_t done;
    while (waitid(P_PID, (id_t)pid, &done, WEXITED) != 0 && errno == EINTR) {
    }
    for (size_t i = 0; i < nchildren; i++) {
      struct child *c = &children[i];
      if (c->pid != pid) continue;
      /* The leader's writes completed before it exited: its output is all in the pipes now. */
      for (int s = 0; s < 2; s++) {
        pump(c, s, 1024);
        if (c->fd[s] >= 0) close(c->fd[s]);
      }
      if (si.si_code == CLD_EXITED) send_ints('X', c->id, si.si_status, -1, 2);
      else send_ints('X', c->id, -1, si.si_status, 2);
      children[i] = children[--nchildren];
      break;
    }
  }
}

struct cursor {
  const char *p, *end;
};

static const char *field(struct cursor *c) {
  if (c->p >= c->end) return NULL;
  const char *s = c->p;
  const char *z = memchr(s, '\0', (size_t)(c->end - s));
  if (!z) return NULL;
  c->p = z + 1;
  return s;
}

static int number(struct cursor *c, unsigned long *out) {
  const char *s = field(c);
  char *e;
  if (!s || !*s) return -1;
  errno = 0;
  *out = strtoul(s, &e, 10);
  return errno || *e ? -1 : 0;
}

static void bad_request(void) {
  fprintf(stderr, "orion-spawn: malformed request\n");
  exit(2);
}

/*
 * execvpe's search, but with the PATH of the child's own environment (posix_spawnp would use ours), and
 * relative PATH entries taken from the child's cwd. Returns 0 with *out set (malloc'ed), or an errno.
 */
static int resolve(const char *file, const char *cwd, char *const env[], char **out) {
  if (!*file) return ENOENT;
  if (strchr(file, '/')) {
    *out = strdup(file); /* relative to cwd, which posix_spawn enters first */
    return *out ? 0 : ENOMEM;
  }
  const char *path = "/bin:/usr/bin";
  for (char *const *e = env; *e; e++) {
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  }
  int err = ENOENT;
  size_t flen = strlen(file), clen = strlen(cwd);
  for (const char *dir = path;; dir++) {
    const char *colon = strchrnul(dir, ':');
    size_t dlen = (size_t)(colon - dir);
    int relative = dlen == 0 || dir[0] != '/';
    char *cand = malloc(clen + dlen + flen + 3);
    if (!cand) return ENOMEM;
    char *p = cand;
    if (relative) {
      memcpy(p, cwd, clen);
      p += clen;
      *p++ = '/';
    }
    memcpy(p, dir, dlen);
    p += dlen;
    if (dlen > 0) *p++ = '/';
    memcpy(p, file, flen + 1);
    struct stat st;
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(cand, X_OK) == 0) {
        *out = cand;
        return 0;
      }
      err = EACCES;
    }
    free(cand);
    if (!*colon) return err;
    dir = colon;
  }
}

static int spawn_child(const char *cwd, char *const argv[], char *const env[], pid_t *pid, int fds[2]) {
  char *prog = NULL;
  int err = resolve(argv[0], cwd, env, &prog);
  if (err) return err;
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    err = errno;
    if (out[0] >= 0) {
      close(out[0]);
      close(out[1]);
    }
    free(prog);
    return err;
  }
  /* Only our ends are non-blocking: the tool's stdout and stderr stay ordinary blocking pipes. */
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(errp[0], F_SETFL, O_NONBLOCK);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, cwd);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  err = posix_spawn(pid, prog, &fa, &attr, argv, env);
  if (err == ENOEXEC) {
    /* A script without "#!": run it with the shell, as execvp (and so Node's spawn) does. */
    size_t argc = 0;
    while (argv[argc]) argc++;
    char **sh = calloc(argc + 2, sizeof *sh);
    if (sh) {
      sh[0] = "/bin/sh";
      sh[1] = prog;
      memcpy(sh + 2, argv + 1, argc * sizeof *sh); /* argv[1..argc], with its NULL */
      err = posix_spawn(pid, "/bin/sh", &fa, &attr, sh, env);
      free(sh);
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(prog);
  close(out[1]);
  close(errp[1]);
  if (err) {
    close(out[0]);
    close(errp[0]);
    return err;
  }
  fds[0] = out[0];
  fds[1] = errp[0];
  return 0;
}

static void handle(const char *req, size_t len) {
  struct cursor c = {req, req + len};
  const char *op = field(&c);
  unsigned long id, n;
  if (!op || number(&c, &id) != 0 || id > UINT32_MAX) bad_request();
  if (strcmp(op, "kill") == 0) {
    unsigned long sig;
    if (number(&c, &sig) != 0 || sig >= (unsigned long)NSIG) bad_request();
    for (size_t i = 0; i < nchildren; i++) {
      if (children[i].id == id) kill(-children[i].pid, (int)sig);
    }
    return;
  }
  if (strcmp(op, "spawn") != 0) bad_request();
  const char *cwd = field(&c);
  if (!cwd || number(&c, &n) != 0 || n == 0 || n > len) bad_request();
  char **argv = calloc(n + 1, sizeof *argv);
  if (!argv) die("calloc");
  for (unsigned long i = 0; i < n; i++) {
    if (!(argv[i] = (char *)field(&c))) bad_request();
  }
  unsigned long envc;
  if (number(&c, &envc) != 0 || envc > len) bad_request();
  char **env = calloc(envc + 1, sizeof *env);
  if (!env) die("calloc");
  for (unsigned long i = 0; i < envc; i++) {
    if (!(env[i] = (char *)field(&c))) bad_request();
  }
  pid_t pid = 0;
  int fds[2] = {-1, -1};
  int err = spawn_child(cwd, argv, env, &pid, fds);
  free(argv);
  free(env);
  if (err) {
    send_ints('F', (uint32_t)id, err, 0, 1);
    return;
  }
  if (nchildren == capchildren) {
    capchildren = capchildren ? capchildren * 2 : 64;
    children = realloc(children, capchildren * sizeof *children);
    if (!children) die("realloc");
  }
  children[nchildren++] = (struct child){(uint32_t)id, pid, {fds[0], fds[1]}};
  send_ints('P', (uint32_t)id, pid, 0, 1);
}

int main(void) {
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  /* SIGCHLD stays blocked except inside ppoll, so no exit is missed between the check and the wait. */
  if (sigprocmask(SIG_BLOCK, &block, &waitmask) != 0) die("sigprocmask");
  sigdelset(&waitmask, SIGCHLD);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_NOCLDSTOP;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGCHLD, &sa, NULL) != 0) die("sigaction");
  signal(SIGPIPE, SIG_IGN);

  send_ints('H', PROTOCOL_VERSION, 0, 0, 0);

  size_t inlen = 0, incap = CHUNK;
  unsigned char *in = malloc(incap);
  struct pollfd *fds = NULL;
  size_t capfds = 0;
  if (!in) die("malloc");
  for (;;) {
    size_t nfds = 1 + 2 * nchildren;
    if (nfds > capfds) {
      capfds = nfds * 2;
      fds = realloc(fds, capfds * sizeof *fds);
      if (!fds) die("realloc");
    }
    fds[0] = (struct pollfd){0, POLLIN, 0};
    for (size_t i = 0; i < nchildren; i++) {
      fds[1 + 2 * i] = (struct pollfd){children[i].fd[0], POLLIN, 0};
      fds[2 + 2 * i] = (struct pollfd){children[i].fd[1], POLLIN, 0};
    }
    if (ppoll(fds, nfds, NULL, &waitmask) < 0) {
      if (errno != EINTR) die("ppoll");
      for (size_t i = 0; i < nfds; i++) fds[i].revents = 0;
    }
    /* Output first: requests may add children, and reaping removes them (and drains their pipes itself). */
    size_t polled = (nfds - 1) / 2;
    for (size_t i = 0; i < polled; i++) {
      for (int s = 0; s < 2; s++) {
        if (fds[1 + 2 * i + (size_t)s].revents) pump(&children[i], s, 1);
      }
    }
    if (fds[0].revents) {
      if (incap - inlen < CHUNK) {
        incap *= 2;
        in = realloc(in, incap);
        if (!in) die("realloc");
      }
      ssize_t r = read(0, in + inlen, incap - inlen);
      if (r == 0) orphaned(); /* Node closed us, exited or was killed */
      if (r < 0 && errno != EINTR && errno != EAGAIN) die("read");
      if (r > 0) inlen += (size_t)r;
      size_t at = 0;
      while (inlen - at >= 4) {
        uint32_t len = get_u32(in + at);
        if (len > MAX_REQUEST) bad_request();
        if (inlen - at - 4 < len) break;
        handle((const char *)in + at + 4, len);
        at += 4 + (size_t)len;
      }
      memmove(in, in + at, inlen - at);
      inlen -= at;
      /* Room for the whole of a large request that has only begun to arrive. */
      if (inlen >= 4 && 4 + (size_t)get_u32(in) > incap) {
        incap = 4 + (size_t)get_u32(in);
        in = realloc(in, incap);
        if (!in) die("realloc");
      }
    }
    if (got_sigchld) {
      got_sigchld = 0;
      reap();
    }
  }
}
