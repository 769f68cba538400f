/* agent-wire: frames one call to the agent and reads its reply — the byte layout both native clients speak (see agent-wire.h). */
#define _GNU_SOURCE
#include "agent-wire.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

const char *agent_env_set(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

size_t agent_trimmed_len(const char *dir, size_t len) {
  while (len > 0 && dir[len - 1] == '/') len--;
  return len;
}

int agent_exit_status(int32_t code) {
  return code >= 0 && code <= 255 ? code : 1;
}

int agent_socket_path(char *out, size_t size) {
  const char *explicit_path = agent_env_set("ORION_AGENT_SOCKET");
  if (explicit_path) {
    if (strlen(explicit_path) >= size) return 0;
    strcpy(out, explicit_path);
    return 1;
  }
  unsigned uid = (unsigned)getuid();
  char dir[PATH_MAX];
  const char *d;
  int n;
  if ((d = agent_env_set("XDG_RUNTIME_DIR")) || (d = agent_env_set("ORION_CACHE_DIR"))) {
    n = snprintf(dir, sizeof dir, "%.*s", (int)agent_trimmed_len(d, strlen(d)), d);
  } else if ((d = agent_env_set("XDG_CACHE_HOME"))) {
    n = snprintf(dir, sizeof dir, "%.*s/orion", (int)agent_trimmed_len(d, strlen(d)), d);
  } else {
    const char *home = agent_env_set("HOME");
    if (!home) {
      struct passwd *pw = getpwuid(getuid());
      home = pw && pw->pw_dir ? pw->pw_dir : "";
    }
    n = snprintf(dir, sizeof dir, "%.*s/.cache/orion", (int)agent_trimmed_len(home, strlen(home)), home);
  }
  if (n < 0 || (size_t)n >= sizeof dir) return 0;
  n = snprintf(out, size, "%s/orion-agent-%u.sock", dir, uid);
  if (n < 0 || (size_t)n >= size || n > AGENT_MAX_SOCKET_PATH) {
    n = snprintf(out, size, "/tmp/orion-%u/orion-agent-%u.sock", uid, uid);
    if (n < 0 || (size_t)n >= size) return 0;
  }
  return 1;
}

int agent_connect(const char *path) {
  struct sockaddr_un addr;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* Writes all of buf, retrying on EINTR. On the agent's socket (to_socket) a vanished peer is EPIPE, not a SIGPIPE:
   the caller falls back instead of dying; fds 1 and 2 keep the usual write() semantics. */
static int write_loop(int fd, const char *p, size_t len, int to_socket) {
  while (len > 0) {
    ssize_t n = to_socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int agent_write_all(int fd, const void *buf, size_t len) {
  return write_loop(fd, buf, len, 0);
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int agent_read_frame(int fd, unsigned char **payload, uint32_t *len) {
  unsigned char head[4];
  if (read_all(fd, head, 4) != 0) return -1;
  *len = agent_get_u32(head);
  if (*len > AGENT_MAX_FRAME) return -1;
  *payload = malloc(*len ? *len : 1);
  if (!*payload) return -1;
  if (read_all(fd, *payload, *len) != 0) {
    free(*payload);
    return -1;
  }
  return 0;
}

static void put_u32(char *p, uint32_t v) {
  p[0] = (char)(v & 0xff);
  p[1] = (char)((v >> 8) & 0xff);
  p[2] = (char)((v >> 16) & 0xff);
  p[3] = (char)((v >> 24) & 0xff);
}

uint32_t agent_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int agent_send_request(int fd, int argc, char *const *argv) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return -1;
  uint32_t envc = 0;
  size_t len = 16; /* frame length, version, argc, envc */
  for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
  len += strlen(cwd) + 1;
  for (char **e = environ; *e; e++, envc++) len += strlen(*e) + 1;
  if (len - 4 > AGENT_MAX_FRAME) return -1;
  char *buf = malloc(len);
  if (!buf) return -1;
  put_u32(buf, (uint32_t)(len - 4));
  put_u32(buf + 4, AGENT_PROTOCOL_VERSION);
  put_u32(buf + 8, (uint32_t)argc);
  put_u32(buf + 12, envc);
  char *p = buf + 16;
  for (int i = 0; i < argc; i++) p = stpcpy(p, argv[i]) + 1;
  p = stpcpy(p, cwd) + 1;
  for (char **e = environ; *e; e++) p = stpcpy(p, *e) + 1;
  int rc = write_loop(fd, buf, len, 1);
  free(buf);
  return rc;
}

int agent_read_reply(int fd, struct agent_reply *r) {
  unsigned char *buf;
  uint32_t len;
  if (agent_read_frame(fd, &buf, &len) != 0) return -1;
  if (len < 13) goto bad;
  uint32_t out_len = agent_get_u32(buf + 5);
  if ((uint64_t)out_len + 13 > len) goto bad;
  uint32_t err_len = agent_get_u32(buf + 9 + out_len);
  if ((uint64_t)out_len + err_len + 13 != len) goto bad;
  r->buf = buf;
  r->status = buf[0];
  r->code = (int32_t)agent_get_u32(buf + 1);
  r->out = buf + 9;
  r->out_len = out_len;
  r->err = buf + 13 + out_len;
  r->err_len = err_len;
  return 0;
bad:
  free(buf);
  return -1;
}
