#!/usr/bin/env bash
# scripts/bench-farm --part redis: Redis 7.0.15 cold on a loopback farm (an `orion head` and 2 `orion node` processes
# x 1 slot, `orion build --head`) against distcc on loopback (a distccd on 127.0.0.1, DISTCC_HOSTS=127.0.0.1:PORT/2,
# `make -j2 CC="distcc gcc"`) and plain `make -j2`: what the farm path costs on one machine (issue 5, benchmark 4).
# Every build is a fresh extract in one tree path with empty caches; rounds interleave; medians and per-round ratios.
#
# Options: --rounds N (default 3) --work DIR (default a temp dir, removed unless --keep) --keep
# Installs distcc from Debian when it is missing (as root, non-interactively).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench_name=bench-farm-redis
# shellcheck source=bench.sh
. "$root/scripts/lib/bench.sh"
rounds=3 work="" keep=0
while (($#)); do
  case $1 in
    --part) shift ;;
    --part=*) ;;
    --rounds) rounds=$2; shift ;;
    --work) work=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "$bench_name: unknown option $1 (--rounds N, --work DIR, --keep)" >&2; exit 2 ;;
  esac
  shift
done
bench_check_counts rounds
bench_unset_env

if ! command -v distccd >/dev/null; then
  echo "$bench_name: installing distcc (Debian)" >&2
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends distcc >/dev/null
fi
tarball=$("$root/scripts/fetch-redis")
[[ -n $work ]] || work=$(mktemp -d /tmp/orion-bench-farm-redis.XXXXXX)
mkdir -p "$work/logs"
orion_dir="$work/orion"
rm -rf "$orion_dir"
bench_snapshot_orion "$root" "$orion_dir"
orion="$orion_dir/bin/orion"
tree="$work/redis"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT

extract() { "$root/scripts/fetch-redis" --extract "$tree" >/dev/null; }
# A live process's own CPU seconds (user + system, children not included).
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
check_built() { [[ -x $tree/src/redis-server ]] || fail "$1 (no src/redis-server)" "$2"; }

for ((r = 1; r <= rounds; r++)); do
  # make -j2
  extract
  log="$work/logs/make.$r"
  t0=$(now)
  (cd "$tree" && make -j2 >"$log" 2>&1) || fail "make -j2 (round $r)" "$log"
  add make "$(elapsed "$t0")"
  check_built "make -j2" "$log"

  # orion build on a loopback farm: head + 2 nodes x 1 slot, all caches empty
  extract
  farm="$work/farm.$r"
  rm -rf "$farm"; mkdir -p "$farm"
  "$orion" head --listen 127.0.0.1:0 --data-dir "$farm/head" >"$farm/head.out" 2>"$farm/head.err" &
  pids+=($!)
  head_pid=$!
  for _ in $(seq 50); do [[ -s $farm/head.out ]] && break; sleep 0.1; done
  addr=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).grpc)' "$farm/head.out")
  node_pids=()
  for n in 1 2; do
    "$orion" node --head "$addr" --slots 1 --name "n$n" --data-dir "$farm/node$n" >"$farm/node$n.log" 2>&1 &
    pids+=($!); node_pids+=($!)
  done
  for _ in $(seq 100); do
    [[ $("$orion" status --head "$addr" --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).nodes.length)}catch{console.log(0)}})') == 2 ]] && break
    sleep 0.1
  done
  log="$work/logs/orion-farm.$r"
  t0=$(now)
  (cd "$work" && ORION_CACHE_DIR="$farm/client" "$orion" build --head "$addr" --json "$tree" >"$log" 2>"$log.err") || fail "orion build --head (round $r)" "$log.err"
  add orion_farm "$(elapsed "$t0")"
  check_built "orion build --head" "$log.err"
  summary=$(tail -1 "$log")
  # jemalloc's compiles ("CC deps/jemalloc/…") that ran on a node rather than here.
  jemalloc_on_nodes=$(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse);console.log(l.filter(e=>e.type==="action"&&e.state==="finished"&&e.kind==="compile"&&/^CC deps\/jemalloc\//.test(e.label)&&e.node&&e.node!=="local").length)' "$log")
  # Where Orion's own CPU went: the head's and each node's JavaScript (their own user+sys; the tools a node runs are
  # its spawn server's children, not counted here), read before they stop.
  head_cpu=$(proc_cpu "$head_pid")
  nodes_cpu=$(for p in "${node_pids[@]}"; do proc_cpu "$p"; done | awk '{s += $1} END {printf "%.1f", s}')
  add head_cpu "$head_cpu"
  add nodes_cpu "$nodes_cpu"
  kill "${node_pids[@]}" "$head_pid" 2>/dev/null || true
  wait "${node_pids[@]}" "$head_pid" 2>/dev/null || true

  # distcc on loopback: one distccd, two jobs
  extract
  port=$(free_port)
  distccd --daemon --no-detach --listen 127.0.0.1 --allow 127.0.0.1 --port "$port" --jobs 2 --log-stderr 2>"$work/logs/distccd.$r" &
  dpid=$!
  pids+=($dpid)
  sleep 0.5
  log="$work/logs/distcc.$r"
  t0=$(now)
  (cd "$tree" && DISTCC_HOSTS="127.0.0.1:$port/2" DISTCC_DIR="$work/distcc-dir" make -j2 CC="distcc gcc" >"$log" 2>&1) || fail "make -j2 CC=\"distcc gcc\" (round $r)" "$log"
  add distcc "$(elapsed "$t0")"
  check_built "distcc" "$log"
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true

  echo "round $r/$rounds: make -j2 $(echo "${T[make]}" | awk '{print $NF}') s, orion build --head (2 nodes x 1 slot) $(echo "${T[orion_farm]}" | awk '{print $NF}') s [head ${head_cpu} CPU-s, nodes ${nodes_cpu} CPU-s, $(echo "$summary" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(`${j.executed} run, nodes ${JSON.stringify(j.nodes)}`)})'), jemalloc compiles on nodes: $jemalloc_on_nodes], distcc $(echo "${T[distcc]}" | awk '{print $NF}') s"
done

median() { tr ' ' '\n' <<<"$1" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratios() { paste -d' ' <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") | awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1 / $2}'; }
echo
printf '%-42s %10s %s\n' scenario "median s" "runs"
printf '%-42s %10s %s\n' "make -j2 cold" "$(median "${T[make]}")" "${T[make]}"
printf '%-42s %10s %s\n' "orion build --head, 2 nodes x 1 slot, cold" "$(median "${T[orion_farm]}")" "${T[orion_farm]}"
printf '%-42s %10s %s\n' "distcc on loopback (127.0.0.1/2), cold" "$(median "${T[distcc]}")" "${T[distcc]}"
fr=$(ratios "${T[orion_farm]}" "${T[make]}")
dr=$(ratios "${T[distcc]}" "${T[make]}")
echo
echo "orion farm / make -j2: median $(median "$fr") (per round: $fr); target <= 1.05"
echo "Orion's own CPU per farm build: head median $(median "${T[head_cpu]}") s (${T[head_cpu]}), nodes together $(median "${T[nodes_cpu]}") s (${T[nodes_cpu]})"
echo "distcc / make -j2:     median $(median "$dr") (per round: $dr); anchor machine: distcc 39.5 s vs make -j2 38.1 s"
mkdir -p "$root/bench-out"
printf '{"make":[%s],"orionFarm":[%s],"distcc":[%s],"headCpu":[%s],"nodesCpu":[%s]}\n' "${T[make]// /,}" "${T[orion_farm]// /,}" "${T[distcc]// /,}" "${T[head_cpu]// /,}" "${T[nodes_cpu]// /,}" | tee "$root/bench-out/bench-farm-redis.json"
