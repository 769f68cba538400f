/* orion-sh: the SHELL make runs every recipe line with under `orion build` — asks the running build, over the agent socket, what to do with the line, and otherwise runs the real shell. */

/*
 * Usage, as make calls $(SHELL):   orion-sh [FLAGS...] -c CMDSTRING [NAME ARGS...]   (or any sh flags and a script)
 *
 * A "-c call" is one whose options (sh's syntax: short-option groups such as -c, -ec, -e -c, -xc; -o/+o take the
 * next word; "-" or "--" ends them; "--long" options take none) include a '-' group holding 'c'; the command string
 * is then the first argument after the options. For a -c call with $ORION_AGENT_SOCKET set, one request goes to
 * that socket (native/common/agent-wire.h has the layout): argv = ["orion-sh", every argument after argv[0]],
 * cwd, environ. The reply decides:
 *   DONE      write the stdout bytes to fd 1, the stderr bytes to fd 2, exit with the code (1 if outside 0..255);
 *   FALLBACK  run the real shell with the original arguments;
 *   REWRITE   write the stderr bytes to fd 2, then run the real shell with the original arguments but the command
 *             string replaced by the stdout bytes.
 * The real shell is $ORION_REAL_SHELL (when set and non-empty) or /bin/sh; "running" it is an exec with argv[0]
 * its path. Everything else — not a -c call, no socket variable, nobody listening, a short or malformed reply —
 * also execs the real shell with the original arguments: Orion's plumbing never fails a build. This client never
 * starts an agent (the build serves the socket), never reads stdin, forks nothing and installs no signal handler:
 * a SIGINT while it waits kills it, and the build sees the connection close. ORION_SH_DEBUG=1 says why it fell back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-wire.h"

static const char *real_shell;
static int debug_enabled;
#define DEBUG(...) do { if (debug_enabled) { fprintf(stderr, "orion-sh: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Execs the real shell with these arguments (argv[0] becomes its path); returns only if even that cannot happen. */
static void run_shell(char **argv) {
  argv[0] = (char *)real_shell;
  if (strchr(real_shell, '/')) execv(real_shell, argv);
  else execvp(real_shell, argv);
  fprintf(stderr, "orion-sh: %s: %s\n", real_shell, strerror(errno));
  exit(errno == ENOENT ? 127 : 126);
}

/* The index of the command string when this is a -c call (see the header for the option syntax), else 0. */
static int command_index(int argc, char **argv) {
  int minus_c = 0;
  int i = 1;
  while (i < argc) {
    const char *a = argv[i];
    if (a[0] != '-' && a[0] != '+') break;
    i++;
    if (strcmp(a, "-") == 0 || strcmp(a, "--") == 0) break;
    if (a[0] == '-' && a[1] == '-') continue;
    for (const char *p = a + 1; *p; p++) {
      if (*p == 'c' && a[0] == '-') minus_c = 1;
      else if (*p == 'o' && i < argc) i++;
    }
  }
  return minus_c && i < argc ? i : 0;
}

/* The reply's exit code as a process status: a code no shell could return still fails the line. */
/* Acts on a well-formed reply: exits for DONE, execs the real shell for the rest. */
static void follow_reply(const struct agent_reply *r, char **argv, int cmd) {
  if (r->status == AGENT_STATUS_DONE) {
    int code = agent_exit_status(r->code);
    if (agent_write_all(1, r->out, r->out_len) != 0 || agent_write_all(2, r->err, r->err_len) != 0) exit(code == 0 ? 1 : code);
    exit(code);
  }
  if (r->status == AGENT_STATUS_REWRITE) {
    /* A NUL would silently cut the new line short: run the original one instead. */
    if (memchr(r->out, 0, r->out_len)) {
      DEBUG("the rewritten line holds a NUL byte; running the original");
      run_shell(argv);
    }
    char *line = strndup((const char *)r->out, r->out_len);
    if (!line) run_shell(argv);
    if (agent_write_all(2, r->err, r->err_len) != 0) DEBUG("cannot write the rewrite's stderr: %s", strerror(errno));
    argv[cmd] = line;
    run_shell(argv);
  }
  if (r->status != AGENT_STATUS_FALLBACK) DEBUG("unknown reply status %u; running the line as given", r->status);
  run_shell(argv);
}

int main(int argc, char **argv) {
  debug_enabled = agent_env_set("ORION_SH_DEBUG") != NULL;
  real_shell = agent_env_set("ORION_REAL_SHELL");
  if (!real_shell) real_shell = "/bin/sh";
  int cmd = command_index(argc, argv);
  const char *sock = agent_env_set("ORION_AGENT_SOCKET");
  if (!cmd || !sock) run_shell(argv);
  int fd = agent_connect(sock);
  if (fd < 0) {
    DEBUG("no build answers at %s: %s", sock, strerror(errno));
    run_shell(argv);
  }
  argv[0] = "orion-sh";
  struct agent_reply r;
  if (agent_send_request(fd, argc, argv) != 0 || agent_read_reply(fd, &r) != 0) {
    DEBUG("the build did not answer the call; running the line as given");
    run_shell(argv);
  }
  close(fd);
  follow_reply(&r, argv, cmd);
  return 127;
}
