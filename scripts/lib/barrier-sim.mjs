// Replays the recorded Redis build graph (../shared/data/redis-7.0.15-graph.json) on N slots with critical-path-first list scheduling, with and without make's .make-prerequisites barrier (every src/ compile, depgen, link and install after all of deps/), and prints makespan and when src/ compiles first start.
//
// Usage: node scripts/lib/barrier-sim.mjs [GRAPH] [SLOTS...]   (defaults: /work/shared/data/redis-7.0.15-graph.json, 2 4 8)
// Used for docs/whole-build-graph.md. Durations are the graph's measured wall_s; edges are its data edges only.
import { readFileSync } from "node:fs";

const [graphPath = "/work/shared/data/redis-7.0.15-graph.json", ...slotArgs] = process.argv.slice(2);
const slotsList = slotArgs.length ? slotArgs.map(Number) : [2, 4, 8];
const g = JSON.parse(readFileSync(graphPath, "utf8"));
const nodes = new Map(g.nodes.map((n) => [n.id, n]));
const ids = [...nodes.keys()];
const w = (id) => nodes.get(id).wall_s ?? 0;
const isDeps = (id) => nodes.get(id).cwd.startsWith("deps");
const preds = new Map(ids.map((i) => [i, new Set()]));
const succs = new Map(ids.map((i) => [i, new Set()]));
for (const [a, b] of g.edges) {
  preds.get(b).add(a);
  succs.get(a).add(b);
}
// topological order, then bottom levels (longest path to a sink) as priorities
const indeg = new Map(ids.map((i) => [i, preds.get(i).size]));
const order = [];
const stack = ids.filter((i) => indeg.get(i) === 0);
while (stack.length) {
  const i = stack.pop();
  order.push(i);
  for (const s of succs.get(i)) {
    indeg.set(s, indeg.get(s) - 1);
    if (indeg.get(s) === 0) stack.push(s);
  }
}
const level = new Map();
for (const i of [...order].reverse()) level.set(i, w(i) + Math.max(0, ...[...succs.get(i)].map((s) => level.get(s))));

function simulate(slots, barrier) {
  const p = new Map(ids.map((i) => [i, new Set(preds.get(i))]));
  if (barrier) {
    const deps = ids.filter(isDeps);
    for (const i of ids) if (!isDeps(i) && ["compile", "link", "depgen", "install"].includes(nodes.get(i).kind)) for (const d of deps) p.get(i).add(d);
  }
  const s = new Map(ids.map((i) => [i, []]));
  for (const [b, as] of p) for (const a of as) s.get(a).push(b);
  const remaining = new Map(ids.map((i) => [i, p.get(i).size]));
  const ready = ids.filter((i) => remaining.get(i) === 0);
  const running = [];
  const start = new Map();
  const finish = new Map();
  let t = 0;
  while (ready.length || running.length) {
    ready.sort((a, b) => level.get(b) - level.get(a));
    while (ready.length && running.length < slots) {
      const i = ready.shift();
      start.set(i, t);
      running.push([t + w(i), i]);
    }
    running.sort((a, b) => a[0] - b[0]);
    const [end, i] = running.shift();
    t = end;
    finish.set(i, t);
    for (const n of s.get(i)) {
      remaining.set(n, remaining.get(n) - 1);
      if (remaining.get(n) === 0) ready.push(n);
    }
  }
  return { makespan: t, start, finish };
}

const srcCompiles = ids.filter((i) => !isDeps(i) && nodes.get(i).kind === "compile");
const total = ids.reduce((a, i) => a + w(i), 0);
console.log(`work ${total.toFixed(1)} s (deps/ ${ids.filter(isDeps).reduce((a, i) => a + w(i), 0).toFixed(1)} s), critical path ${g.stats.critical_path_s} s`);
for (const slots of slotsList) {
  for (const barrier of [true, false]) {
    const { makespan, start, finish } = simulate(slots, barrier);
    const depsDone = Math.max(...ids.filter(isDeps).map((i) => finish.get(i)));
    const firstSrc = Math.min(...srcCompiles.map((i) => start.get(i)));
    console.log(`${slots} slots, barrier ${barrier ? "yes" : "no "}: makespan ${makespan.toFixed(1)} s, deps/ done ${depsDone.toFixed(1)} s, first src/ compile starts ${firstSrc.toFixed(1)} s`);
  }
}
