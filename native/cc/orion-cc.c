/* orion-cc: the per-compile native client of `orion cc` — forwards one compiler call to the local agent over a unix socket, starting the agent when none runs, and runs the compiler itself whenever the agent cannot serve the call. */

/*
 * Usage: orion-cc COMPILER ARGS...   (or invoked as gcc, cc, g++, c++, clang, clang++: orion-cc <that name> ARGS...)
 *
 * Protocol (src/agent/protocol.ts is the reference, native/common/agent-wire.c the code shared with orion-sh;
 * integers are little-endian u32 unless noted). Each message is a frame: u32 payload length, then the payload. One
 * request and one reply per connection.
 *   request:  u32 version (1), u32 argc, u32 envc, then NUL-terminated argv[0..argc), cwd, env[0..envc)
 *   reply:    u8 status (0 done, 1 run it yourself, 2 rewrite: orion-sh's, taken as 1 here), i32 exit code,
 *             u32 n, n stdout bytes, u32 m, m stderr bytes
 *
 * Socket: $ORION_AGENT_SOCKET, else <dir>/orion-agent-<uid>.sock with dir = $XDG_RUNTIME_DIR, $ORION_CACHE_DIR,
 * $XDG_CACHE_HOME/orion or $HOME/.cache/orion (first set, non-empty); /tmp/orion-<uid>/... when longer than 107 bytes.
 * The same rule as src/agent/socket-path.ts.
 *
 * Start-up: when no agent answers, take an flock on <socket>.lock, try again, and if still nobody answers spawn
 * `node <repo>/bin/orion agent --foreground --socket PATH` in its own session, keeping the lock until the socket
 * accepts (or ~5 s pass): concurrent first calls wait on the lock and then find the one agent.
 *
 * Whatever goes wrong with the agent (or ORION_NO_AGENT=1), the compiler is exec()ed directly: Orion's plumbing
 * never fails a build. ORION_MASQUERADE_DIR names a directory of symlinks to orion (gcc -> orion); it is skipped
 * when COMPILER is looked up on PATH, so the real compiler runs, and the agent gets its absolute path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-wire.h"

#define START_TIMEOUT_MS 5000

/* The call being made: argv with argv[0] resolved to the real compiler's path (or left as given when unresolved). */
static char **call_argv;
static int call_argc;
static char resolved[PATH_MAX];

static int debug_enabled;
#define DEBUG(...) do { if (debug_enabled) { fprintf(stderr, "orion-cc: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Runs the compiler directly; returns only if even that cannot happen. */
static void run_directly(void) {
  if (strchr(call_argv[0], '/')) execv(call_argv[0], call_argv);
  else execvp(call_argv[0], call_argv);
  fprintf(stderr, "orion-cc: %s: %s\n", call_argv[0], strerror(errno));
  exit(errno == ENOENT ? 127 : 126);
}

static int is_masquerade_name(const char *name) {
  static const char *const names[] = {"gcc", "cc", "g++", "c++", "clang", "clang++", NULL};
  for (const char *const *n = names; *n; n++)
    if (strcmp(name, *n) == 0) return 1;
  return 0;
}

/* Looks `name` up on PATH, skipping the masquerade directory; fills `resolved` and returns 1 when found. */
static int resolve_on_path(const char *name) {
  const char *path = getenv("PATH");
  const char *masq = getenv("ORION_MASQUERADE_DIR");
  struct stat masq_st;
  int have_masq = masq && *masq && stat(masq, &masq_st) == 0;
  size_t masq_len = have_masq ? agent_trimmed_len(masq, strlen(masq)) : 0;
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (1) {
    const char *end = strchrnul(path, ':');
    size_t len = (size_t)(end - path);
    const char *dir = len ? path : ".";
    size_t dlen = len ? agent_trimmed_len(path, len) : 1;
    int skip = 0;
    if (have_masq) {
      if (dlen == masq_len && strncmp(dir, masq, dlen) == 0) {
        skip = 1;
      } else {
        /* The same directory under another spelling (a symlink, "./"): compare the inode too. */
        char d[PATH_MAX];
        struct stat st;
        if (dlen < sizeof d) {
          memcpy(d, dir, dlen);
          d[dlen] = 0;
          if (dlen == 0) strcpy(d, "/");
          if (stat(d, &st) == 0 && st.st_dev == masq_st.st_dev && st.st_ino == masq_st.st_ino) skip = 1;
        }
      }
    }
    if (!skip && dlen + 1 + strlen(name) < sizeof resolved) {
      snprintf(resolved, sizeof resolved, "%.*s/%s", (int)dlen, dir, name);
      if (access(resolved, X_OK) == 0) {
        struct stat st;
        if (stat(resolved, &st) == 0 && S_ISREG(st.st_mode)) {
          if (resolved[0] != '/') {
            /* An empty or relative PATH entry: the agent runs in another cwd, so send an absolute path. */
            char abs[PATH_MAX];
            if (realpath(resolved, abs)) snprintf(resolved, sizeof resolved, "%s", abs);
          }
          return 1;
        }
      }
    }
    if (!*end) return 0;
    path = end + 1;
  }
}

/* mkdir -p of the socket's directory (mode 0700 for the parts it creates). */
static void make_parent_dirs(const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    mkdir(p, 0700);
    *s = '/';
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* The repository root: this binary lives at <repo>/native/build/orion-cc. */
static int repo_root(char *out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0) return 0;
  out[n] = 0;
  for (int i = 0; i < 3; i++) {
    char *slash = strrchr(out, '/');
    if (!slash) return 0;
    *slash = 0;
  }
  return out[0] != 0;
}

/* Forks the agent into its own session with stdin on /dev/null and stdout/stderr on <socket>.log; returns its pid. */
static pid_t spawn_agent(const char *sock) {
  char root[PATH_MAX], script[PATH_MAX + 16], log[PATH_MAX + 8];
  if (!repo_root(root, sizeof root)) return -1;
  snprintf(script, sizeof script, "%s/bin/orion", root);
  snprintf(log, sizeof log, "%s.log", sock);
  const char *node = agent_env_set("ORION_NODE");
  if (!node) node = "node";
  pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();
  int in = open("/dev/null", O_RDONLY);
  int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (out < 0) out = open("/dev/null", O_WRONLY);
  if (in >= 0) dup2(in, 0);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  /* No inherited descriptor may stay open in a process that outlives the build: make's jobserver pipe, the
     pipe a caller reads our output from (it would never see EOF), the start-up lock. */
  long maxfd = sysconf(_SC_OPEN_MAX);
  if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
  for (int fd = 3; fd < maxfd; fd++) close(fd);
  signal(SIGPIPE, SIG_DFL);
  /* --no-memory-reducer: as src/agent/command.ts starts it (AGENT_NODE_FLAGS says why). */
  execlp(node, node, "--no-memory-reducer", script, "agent", "--foreground", "--socket", sock, (char *)NULL);
  _exit(127);
}

/* Starts the agent unless another client did while we waited for the lock; returns a connected socket or -1. */
static int start_agent_and_connect(const char *sock) {
  char lock[PATH_MAX + 8];
  snprintf(lock, sizeof lock, "%s.lock", sock);
  make_parent_dirs(sock);
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0) {
    DEBUG("cannot open %s: %s", lock, strerror(errno));
    return -1;
  }
  while (flock(lfd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(lfd);
      return -1;
    }
  }
  int fd = agent_connect(sock);
  if (fd >= 0) {
    close(lfd);
    return fd;
  }
  pid_t pid = spawn_agent(sock);
  DEBUG("started the agent, pid %d", (int)pid);
  if (pid > 0) {
    for (int waited = 0; waited < START_TIMEOUT_MS; waited += 5) {
      fd = agent_connect(sock);
      if (fd >= 0) break;
      int status;
      /* The agent died on start-up (no node, a broken build): stop waiting. */
      if (waitpid(pid, &status, WNOHANG) == pid) break;
      sleep_ms(5);
    }
  }
  close(lfd);
  return fd;
}

/* Reads the reply and, when the agent served the call, writes its output and exits with its code. Returns otherwise. */
static void finish_call(int fd) {
  struct agent_reply r;
  if (agent_read_reply(fd, &r) != 0) return;
  if (r.status != AGENT_STATUS_DONE) {
    /* FALLBACK, or a REWRITE (meant for orion-sh): either way the compiler runs here. */
    DEBUG("the agent asks us to run the compiler ourselves");
    return;
  }
  /* Only now, with the whole reply in hand, is anything printed: a half reply falls back without duplicated output. */
  if (agent_write_all(1, r.out, r.out_len) != 0 || agent_write_all(2, r.err, r.err_len) != 0) exit(r.code == 0 ? 1 : r.code);
  exit(r.code);
}

int main(int argc, char **argv) {
  debug_enabled = agent_env_set("ORION_CC_DEBUG") != NULL;
  const char *self = strrchr(argv[0], '/');
  self = self ? self + 1 : argv[0];
  if (is_masquerade_name(self)) {
    /* Called as gcc: the call is argv itself, with argv[0] the bare name to resolve. */
    argv[0] = (char *)self;
    call_argv = argv;
    call_argc = argc;
  } else {
    if (argc < 2) {
      fprintf(stderr, "usage: orion-cc COMPILER [ARGS...]\n");
      return 2;
    }
    call_argv = argv + 1;
    call_argc = argc - 1;
  }
  if (!strchr(call_argv[0], '/')) {
    if (resolve_on_path(call_argv[0])) {
      call_argv[0] = resolved;
    } else if (agent_env_set("ORION_MASQUERADE_DIR")) {
      /* execvp would find the masquerade link again and loop. */
      fprintf(stderr, "orion-cc: %s: not found on PATH (outside %s)\n", call_argv[0], getenv("ORION_MASQUERADE_DIR"));
      return 127;
    }
  }
  if (agent_env_set("ORION_NO_AGENT") && strcmp(getenv("ORION_NO_AGENT"), "0") != 0) run_directly();
  /* A source on stdin (configure probes: `echo ... | cc -x c -`) needs this process's stdin, which the
     agent cannot read: such a call is never cacheable anyway, so the compiler runs here. */
  for (int i = 1; i < call_argc; i++) {
    if (strcmp(call_argv[i], "-") == 0) run_directly();
  }

  signal(SIGPIPE, SIG_IGN); /* a vanished agent becomes EPIPE, and a fallback, not a dead client */
  char sock[PATH_MAX];
  if (!agent_socket_path(sock, sizeof sock)) run_directly();
  int fd = agent_connect(sock);
  if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED)) fd = start_agent_and_connect(sock);
  if (fd < 0) {
    DEBUG("no agent at %s: %s; running %s directly", sock, strerror(errno), call_argv[0]);
    run_directly();
  }
  if (agent_send_request(fd, call_argc, call_argv) == 0) finish_call(fd);
  DEBUG("the agent did not serve the call; running %s directly", call_argv[0]);
  close(fd);
  signal(SIGPIPE, SIG_DFL);
  run_directly();
  return 127;
}
