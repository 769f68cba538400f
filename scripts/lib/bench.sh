# Shell helpers shared by the build benchmarks (scripts/bench-local, bench-cc, bench-redis); sourced, never run.
# The sourcing script sets `bench_name` (its name in messages) and `root` (this checkout) before calling them.

# Make's, the compilers' and Orion's variables from the caller must not leak into the measurements.
bench_unset_env() {
  unset MAKEFLAGS MFLAGS GNUMAKEFLAGS MAKELEVEL CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS CCACHE_DIR CCACHE_BASEDIR \
    ORION_HEAD ORION_CACHE_DIR ORION_AGENT_SOCKET XDG_RUNTIME_DIR ORION_RECORD ORION_NO_AGENT || true
}

# bench_check_counts NAME...: each named variable holds a whole number >= 1 (its flag is --NAME, _ read as -).
bench_check_counts() {
  local v
  for v in "$@"; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "$bench_name: --${v//_/-} takes a whole number >= 1" >&2; exit 2; }
  done
}

# bench_snapshot_orion FROM DEST: copies the built Orion in FROM to DEST, since other work may rebuild dist/ while a
# benchmark runs; the benchmark then runs DEST/bin/orion. native/build (the spawn server, the orion cc client) comes
# along when it is there: without the spawn server Orion forks from Node, which is slower.
bench_snapshot_orion() {
  local from=$1 dest=$2
  mkdir -p "$dest/bin"
  cp -r "$from/dist" "$dest/dist"
  cp "$from/bin/orion" "$dest/bin/orion"
  cp "$from/package.json" "$dest/package.json"
  if [[ -d $from/native/build ]]; then mkdir -p "$dest/native"; cp -r "$from/native/build" "$dest/native/build"; fi
  ln -s "$(readlink -f "$from/node_modules")" "$dest/node_modules"
}

now() { date +%s.%N; }
# elapsed START: seconds since START, 3 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# fail WHAT LOG: copies LOG to bench-out/, prints its tail and exits 1.
fail() {
  mkdir -p "$root/bench-out"; cp "$2" "$root/bench-out/failed-$(basename "$2").log"
  echo "$bench_name: $1 failed; log kept in bench-out/failed-$(basename "$2").log:" >&2; tail -20 "$2" >&2; exit 1
}

# T[scenario]="t1 t2 ...": one time per round; add SCENARIO TIME appends one.
declare -A T
add() { T[$1]="${T[$1]:-}${T[$1]:+ }$2"; }
