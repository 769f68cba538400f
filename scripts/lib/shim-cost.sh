#!/usr/bin/env bash
# Measures what a make SHELL shim costs per recipe line: ms per `SHELL -c 'true'` call for /bin/sh itself, an sh
# shim that logs the line and execs /bin/sh, and a C shim that does the same (written and compiled to a temp dir).
#
# Usage: scripts/lib/shim-cost.sh [CALLS]   (default 500; prints one "name ms-per-call" line per variant)
# Used for docs/whole-build-graph.md; multiply by the recipe-line count of a build to get its shim overhead.
set -euo pipefail
calls=${1:-500}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/shim.sh" <<'SH'
#!/bin/sh
printf '%s\n' "$*" >> "$SHIM_LOG"
exec /bin/sh "$@"
SH
cat > "$dir/shim.c" <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  const char *log = getenv("SHIM_LOG");
  int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  for (int i = 1; fd >= 0 && i < argc; i++) {
    (void)!write(fd, argv[i], strlen(argv[i]));
    (void)!write(fd, i + 1 < argc ? " " : "\n", 1);
  }
  argv[0] = "/bin/sh";
  execv("/bin/sh", argv);
  return 127;
}
C
chmod +x "$dir/shim.sh"
gcc -O2 -o "$dir/shim-c" "$dir/shim.c"
export SHIM_LOG=$dir/log
now() { date +%s.%N; }
per_call() {
  local t0 i
  t0=$(now)
  for ((i = 0; i < calls; i++)); do "$@" -c 'true'; done
  awk -v a="$t0" -v b="$(now)" -v n="$calls" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }'
}
echo "bin-sh $(per_call /bin/sh)"
echo "sh-shim $(per_call "$dir/shim.sh")"
echo "c-shim $(per_call "$dir/shim-c")"
