#!/usr/bin/env bash
# The sandbox's cost on a real build: Redis 7.0.15 cold through `orion build` (embedded), sandboxed against
# --unsandboxed, interleaved (the order alternates each round), one tree path, a fresh cache each build.
# Run by `scripts/bench-sandbox --redis [--rounds N]`; prints each time, the medians and the median of the
# per-round ratios with their spread.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench_name=bench-sandbox
# shellcheck source=bench.sh
. "$root/scripts/lib/bench.sh"
rounds=${BENCH_ROUNDS:-5}
bench_unset_env
work=$(mktemp -d /tmp/orion-bench-sandbox.XXXXXX)
trap 'rm -rf "$work"' EXIT
bench_snapshot_orion "$root" "$work/orion"
orion=$work/orion/bin/orion
"$root/scripts/fetch-redis" >/dev/null
clean_env=(env -i PATH="$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin" HOME="$HOME" LANG=C TMPDIR="${TMPDIR:-/tmp}")

declare -a sb=() un=() ratio=()
build() { # MODE ROUND -> prints seconds
  local mode=$1 r=$2 log=$work/$1-$2.log flags=()
  [ "$mode" = unsandboxed ] && flags=(--unsandboxed)
  "$root/scripts/fetch-redis" --extract "$work/redis" >/dev/null
  local t0; t0=$(now)
  "${clean_env[@]}" ORION_CACHE_DIR="$work/cache-$mode-$r" "$orion" build "$work/redis" --json "${flags[@]}" >"$log" 2>&1 || fail "orion build ($mode, round $r)" "$log"
  elapsed "$t0"
  rm -rf "$work/cache-$mode-$r"
}
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then order=(sandboxed unsandboxed); else order=(unsandboxed sandboxed); fi
  for m in "${order[@]}"; do
    s=$(build "$m" "$r")
    echo "round $r: $m ${s}s"
    if [ "$m" = sandboxed ]; then sb+=("$s"); else un+=("$s"); fi
  done
  ratio+=("$(awk -v a="${sb[-1]}" -v b="${un[-1]}" 'BEGIN { printf "%.3f", a / b }')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd- -; }
echo "Redis cold, embedded, $rounds rounds: sandboxed median $(median "${sb[@]}")s, unsandboxed $(median "${un[@]}")s;" \
  "sandboxed/unsandboxed median of per-round ratios $(median "${ratio[@]}") (spread $(spread "${ratio[@]}"); target <= 1.03)"
