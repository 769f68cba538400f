/* orion-limit: puts itself in an action's pids cgroup and sets its resource limits, then execs the sandbox (bwrap), so every process the action starts inherits both. */

/*
 * Usage: orion-limit [-c CGROUP_DIR] [-p MAX_PROCESSES] [-m MAX_ADDRESS_SPACE_BYTES] [-f MAX_FILE_BYTES] -- PROGRAM ARGS...
 *   -c  writes this process's pid to CGROUP_DIR/cgroup.procs (cgroup v1 or v2 alike) before anything forks
 *   -p  RLIMIT_NPROC (enforced by the kernel only when the caller is not root; the pids cgroup is the limit then)
 *   -m  RLIMIT_AS, per process
 *   -f  RLIMIT_FSIZE, per file written
 * PROGRAM is run with execv (an absolute path: no PATH search, the caller names bwrap exactly).
 * Failures print one line starting with "orion-sandbox: " on stderr and exit 1, which the caller tells
 * apart from a tool's own failure by that prefix, as it does bwrap's "bwrap: " lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void fail(const char *what, const char *arg) {
  fprintf(stderr, "orion-sandbox: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(1);
}

static rlim_t number(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || !*s || *end) {
    errno = EINVAL;
    fail("bad number", s);
  }
  return (rlim_t)v;
}

static void limit(int resource, const char *value, const char *name) {
  rlim_t v = number(value);
  struct rlimit rl = {v, v};
  if (setrlimit(resource, &rl) != 0) fail("setrlimit", name);
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) {
      errno = EINVAL;
      fail("missing value for", opt);
    }
    const char *val = argv[++i];
    if (strcmp(opt, "-c") == 0) {
      char path[4096];
      if (snprintf(path, sizeof path, "%s/cgroup.procs", val) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        fail("cgroup path", val);
      }
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0) fail("cannot open", path);
      char pid[32];
      int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
      if (write(fd, pid, (size_t)n) != n) fail("cannot join cgroup", val);
      close(fd);
    } else if (strcmp(opt, "-p") == 0) {
      limit(RLIMIT_NPROC, val, "RLIMIT_NPROC");
    } else if (strcmp(opt, "-m") == 0) {
      limit(RLIMIT_AS, val, "RLIMIT_AS");
    } else if (strcmp(opt, "-f") == 0) {
      limit(RLIMIT_FSIZE, val, "RLIMIT_FSIZE");
    } else {
      errno = EINVAL;
      fail("unknown option", opt);
    }
  }
  if (i >= argc) {
    errno = EINVAL;
    fail("no program to run", NULL);
  }
  execv(argv[i], argv + i);
  fail("cannot run", argv[i]);
  return 1;
}
