/* orion-build: `orion build ARGS` as a thin client of the per-user agent, which keeps Node, its modules and the stores
 * warm between builds (src/agent/build-server.ts serves it). bin/orion execs it as `orion-build SCRIPT build ARGS...`,
 * SCRIPT being bin/orion itself.
 *
 * It sends argv ("orion-build", "build", ARGS...), its cwd and its environment — plus ORION_CLIENT_TTY ("1" or "0"
 * for stdout and for stderr being terminals) and ORION_CLIENT_COLUMNS — in the agent's request frame, then prints the
 * build frames that come back (native/common/agent-wire.h) until the exit frame, and exits with its code.
 *
 * When no agent answers, ORION_BUILD_SERVER=0 is set, or the agent does not serve this build (NOT_SERVED: the graph
 * driver, no Makefile), it execs `node SCRIPT build ARGS...`: the build runs in its own process, as without this client.
 * The first Ctrl-C (SIGINT or SIGTERM) half-closes the socket, which the agent takes as the build's interrupt: it stops
 * make and answers with exit 130. A second one exits at once with 130.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent-wire.h"

static volatile sig_atomic_t interrupted = 0;
static int agent_fd = -1;

static void on_interrupt(int sig) {
  (void)sig;
  if (interrupted) _exit(130);
  interrupted = 1;
  if (agent_fd >= 0) shutdown(agent_fd, SHUT_WR);
}

/* The build in a Node process of its own: bin/orion's usual path. */
static void run_in_node(const char *script, int argc, char **argv) {
  unsetenv("ORION_CLIENT_TTY");
  unsetenv("ORION_CLIENT_COLUMNS");
  const char *node = agent_env_set("ORION_NODE");
  if (!node) node = "node";
  char **args = calloc((size_t)argc + 3, sizeof *args);
  if (!args) _exit(3);
  args[0] = (char *)node;
  args[1] = (char *)script;
  for (int i = 0; i < argc; i++) args[i + 2] = argv[i];
  execvp(node, args);
  fprintf(stderr, "orion: cannot run %s: %s\n", node, strerror(errno));
  _exit(3);
}

static int terminal_columns(void) {
  struct winsize ws;
  for (int fd = 1; fd <= 2; fd++)
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

/**
 * The agent a build just started in the background (its pid in SOCK.starting) may not listen yet: wait for it — up to
 * 3 s, while that process lives and the note is fresh — rather than start a Node of our own. -1: no such agent.
 */
static int connect_when_started(const char *sock) {
  char note[4200];
  snprintf(note, sizeof note, "%s.starting", sock);
  struct stat st;
  if (stat(note, &st) != 0 || time(NULL) - st.st_mtime > 10) return -1;
  FILE *f = fopen(note, "r");
  if (!f) return -1;
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1) pid = 0;
  fclose(f);
  for (int i = 0; pid > 0 && i < 150; i++) {
    if (kill((pid_t)pid, 0) != 0) return -1; /* gone, or not ours: nothing to wait for */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int fd = agent_connect(sock);
    if (fd >= 0) return fd;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: orion-build SCRIPT build [ARGS...] (bin/orion runs it)\n");
    return 2;
  }
  const char *script = argv[1];
  int nargs = argc - 2;
  char **args = argv + 2;
  const char *server = agent_env_set("ORION_BUILD_SERVER");
  if ((server && strcmp(server, "0") == 0) || agent_env_set("ORION_NO_AGENT")) run_in_node(script, nargs, args);

  char sock[4096];
  if (!agent_socket_path(sock, sizeof sock)) run_in_node(script, nargs, args);
  signal(SIGPIPE, SIG_IGN); /* a vanished agent is EPIPE on the socket, not a dead client */
  agent_fd = agent_connect(sock);
  if (agent_fd < 0) agent_fd = connect_when_started(sock);
  if (agent_fd < 0) run_in_node(script, nargs, args);

  char tty[3] = {isatty(1) ? '1' : '0', isatty(2) ? '1' : '0', 0};
  char cols[16];
  snprintf(cols, sizeof cols, "%d", terminal_columns());
  setenv("ORION_CLIENT_TTY", tty, 1);
  setenv("ORION_CLIENT_COLUMNS", cols, 1);
  char **req = calloc((size_t)nargs + 2, sizeof *req);
  if (!req) return 3;
  req[0] = "orion-build";
  for (int i = 0; i < nargs; i++) req[i + 1] = args[i];
  if (agent_send_request(agent_fd, nargs + 1, req) != 0) {
    close(agent_fd);
    run_in_node(script, nargs, args);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int printed = 0;
  for (;;) {
    unsigned char *p;
    uint32_t n;
    if (agent_read_frame(agent_fd, &p, &n) != 0) break;
    if (n == 0) {
      free(p);
      break;
    }
    const unsigned char *bytes = p + 1;
    size_t len = n - 1;
    switch (p[0]) {
      case AGENT_BUILD_STDOUT:
      case AGENT_BUILD_STDERR:
        printed = 1;
        /* A reader gone (`orion build | head`): stop the build as Ctrl-C would. */
        if (agent_write_all(p[0] == AGENT_BUILD_STDOUT ? 1 : 2, bytes, len) != 0 && !interrupted) {
          interrupted = 1;
          shutdown(agent_fd, SHUT_WR);
        }
        break;
      case AGENT_BUILD_EXIT: {
        int code = len >= 4 ? agent_exit_status((int32_t)agent_get_u32(bytes)) : 3;
        return interrupted && code == 0 ? 130 : code;
      }
      case AGENT_BUILD_NOT_SERVED:
        if (!printed && !interrupted) {
          close(agent_fd);
          run_in_node(script, nargs, args);
        }
        break;
      default:
        break;
    }
    free(p);
  }
  if (interrupted) return 130;
  fprintf(stderr, "orion: the build server stopped before the build ended (its log: %s.log)\n", sock);
  return 3;
}
