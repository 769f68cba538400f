#!/usr/bin/env bash
# Measures what a make SHELL shim costs per recipe line: ms per `SHELL -c 'true'` call for /bin/sh itself, an sh
# shim that logs the line and execs /bin/sh, a C shim that does the same (written and compiled to a temp dir), and —
# when this checkout has built them — the real native/build/orion-sh with ORION_AGENT_SOCKET unset, with a live
# test agent answering FALLBACK (one round trip, then the exec of /bin/sh), and with it answering DONE (no shell).
#
# Usage: scripts/lib/shim-cost.sh [CALLS]   (default 500; prints one "name ms-per-call" line per variant)
# Used for docs/whole-build-graph.md; multiply by the recipe-line count of a build to get its shim overhead.
set -euo pipefail
calls=${1:-500}
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
agent_pid=
trap '[ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null; rm -rf "$dir"' EXIT
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
  for ((i = 0; i < calls; i++)); do "$@" -c "${LINE:-true}"; done
  awk -v a="$t0" -v b="$(now)" -v n="$calls" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }'
}
echo "bin-sh $(per_call /bin/sh)"
echo "sh-shim $(per_call "$dir/shim.sh")"
echo "c-shim $(per_call "$dir/shim-c")"

orion_sh=$repo/native/build/orion-sh
[ -x "$orion_sh" ] && [ -f "$repo/dist/src/agent/server.js" ] || exit 0
echo "orion-sh-no-socket $(unset ORION_AGENT_SOCKET; per_call "$orion_sh")"
# A test agent on the real server code: FALLBACK for `true`, DONE (exit 0, no output) for `:`.
node --input-type=module -e '
const [server, logger, sock] = process.argv.slice(1);
const { startAgent } = await import(server);
const { silentLogger } = await import(logger);
const reply = (runInClient) => ({ exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), runInClient });
const handler = { handle: async (call) => reply(call.argv.at(-1) !== ":") };
const agent = await startAgent({ socketPath: sock, handler, idleMs: 600000, logger: silentLogger });
process.once("SIGTERM", () => void agent.close());
' "$repo/dist/src/agent/server.js" "$repo/dist/src/core/logger.js" "$dir/agent.sock" &
agent_pid=$!
for ((i = 0; i < 500; i++)); do [ -S "$dir/agent.sock" ] && break; sleep 0.01; done
export ORION_AGENT_SOCKET=$dir/agent.sock
echo "orion-sh-fallback $(per_call "$orion_sh")"
echo "orion-sh-done $(LINE=: per_call "$orion_sh")"
