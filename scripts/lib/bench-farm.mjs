// scripts/bench-farm, part 1 (throughput): a real head (gRPC server in this process) and 2 node processes whose
// registered executor does nothing, so the figures measure Orion's scheduling and wire, not fork().
// Measures actions/s for N independent actions submitted at once, and ready-to-started latency (p50/p99)
// at a fixed offered load. Run through scripts/bench-farm; needs a built Orion (make build).
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const dist = new URL("../../dist/src/", import.meta.url).href;
const core = await import(dist + "core/index.js");
const { connectFarm, startFarmServer } = await import(dist + "grpc/index.js");
const { Node } = await import(dist + "node/index.js");

const now = () => performance.timeOrigin + performance.now();
const TOOLCHAIN = "bench-noop";

const { values: args } = parseArgs({
  options: {
    node: { type: "string" },
    name: { type: "string" },
    actions: { type: "string", default: "10000" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    slots: { type: "string", default: "8" },
    nodes: { type: "string", default: "2" },
  },
});

if (args.node) await runNode(args.node, args.name, Number(args.slots));
else await runHead();

/** A node process: registers with the head and answers every lease at once, stamping when it started. */
async function runNode(address, name, slots) {
  const conn = connectFarm(address);
  const node = new Node({
    name,
    slots,
    head: conn.nodeControl,
    logger: core.silentLogger,
    toolchains: [{ name: "noop", digest: TOOLCHAIN, path: "" }],
    leaseWaitMs: 1000,
    executor: {
      async execute() {
        // The start time rides back in stdout: sub-millisecond, and the head stores it with the result.
        const started = now();
        return {
          result: { outputFiles: [], exitCode: 0, stdoutRaw: Buffer.from(String(started)), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined },
          phases: { inputFetchMs: 0, executeMs: 0, uploadMs: 0 },
        };
      },
    },
  });
  await node.start();
  process.send?.("ready");
  process.on("message", async (m) => {
    if (m !== "stop") return;
    await node.stop();
    conn.close();
    process.exit(0);
  });
}

async function runHead() {
  const { createBlobStore } = await import(dist + "cas/index.js");
  const { SqliteActionCache } = await import(dist + "cache/index.js");
  const { Head } = await import(dist + "head/index.js");
  const { Directory } = await import(dist + "gen/orion/v1/remote_execution.js");
  const dir = mkdtempSync(join(tmpdir(), "orion-bench-farm-"));
  const store = createBlobStore({ dir: join(dir, "cas") });
  const cache = new SqliteActionCache(join(dir, "ac.db"));
  const head = new Head({ store, cache, clock: core.systemClock, ids: core.randomIds, logger: core.silentLogger, externalDigest: async () => undefined, heartbeatMs: 5000, nodeTtlMs: 60_000 });
  const server = await startFarmServer({ head, store, listen: "127.0.0.1:0", tmpDir: join(dir, "tmp"), logger: core.silentLogger });
  const children = [];
  for (let i = 0; i < Number(args.nodes); i++) {
    const child = fork(new URL(import.meta.url).pathname, ["--node", server.address, "--name", `bench-${i + 1}`, "--slots", args.slots], { stdio: "inherit" });
    await new Promise((r) => child.once("message", r));
    children.push(child);
  }
  const root = await store.put(Directory.encode({ files: [], directories: [], symlinks: [] }).finish());
  const context = { root, files: new Map() };
  let nextId = 0;
  const action = () => {
    const id = `a${nextId++}`;
    return { id, kind: "other", label: `NOOP ${id}`, arguments: ["noop"], cwd: "", inputs: [], outputs: [], deps: [], host: false, toolchain: TOOLCHAIN, environmentVariables: [], shell: "" };
  };

  /** Submits one build; resolves with its summary and each action's ready → started and queued → started latency. */
  async function build(actions) {
    const ready = now();
    const queued = new Map();
    const { buildId } = await head.submitBuild({ contextRoot: root, actions, noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/bench" }, context);
    const finishedIds = [];
    const summary = await new Promise((resolve) => {
      head.watchBuild(buildId, 0, (e) => {
        if (e.type === "action" && e.state === "queued") queued.set(e.id, now());
        if (e.type === "action" && e.state === "finished") finishedIds.push(e.id);
        if (e.type === "summary") resolve(e);
      });
    });
    const lat = [];
    for (const id of finishedIds) {
      const r = await head.getResult(buildId, id);
      const started = Number(r.stdoutRaw.toString());
      lat.push({ fromReady: started - ready, fromQueued: started - queued.get(id) });
    }
    head.dropBuild(buildId);
    return { summary, lat };
  }

  // Warm-up: connections, JIT.
  await build(Array.from({ length: 500 }, action));

  // 1. Throughput: N independent actions at once.
  const n = Number(args.actions);
  const t0 = now();
  const big = await build(Array.from({ length: n }, action));
  const wall = (now() - t0) / 1000;
  const throughput = { actions: n, seconds: +wall.toFixed(3), actionsPerSecond: Math.round(n / wall), nodes: big.summary.nodes, failed: big.summary.failed };

  // 2. Latency at a fixed offered load: actions become ready at `rate` per second (small builds every 10 ms).
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  const pending = [];
  const start = now();
  let offered = 0;
  while (now() - start < seconds * 1000) {
    const due = Math.floor(((now() - start) / 1000) * rate) - offered;
    if (due > 0) {
      offered += due;
      pending.push(build(Array.from({ length: due }, action)));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const results = await Promise.all(pending);
  const fromReady = results.flatMap((r) => r.lat.map((l) => l.fromReady)).sort((a, b) => a - b);
  const fromQueued = results.flatMap((r) => r.lat.map((l) => l.fromQueued)).sort((a, b) => a - b);
  const pct = (xs, p) => +xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))].toFixed(2);
  const latency = {
    offeredPerSecond: rate,
    actions: fromReady.length,
    readyToStartedMs: { p50: pct(fromReady, 50), p99: pct(fromReady, 99), max: pct(fromReady, 100) },
    queuedToStartedMs: { p50: pct(fromQueued, 50), p99: pct(fromQueued, 99) },
  };

  const out = { throughput, latency, nodes: Number(args.nodes), slotsPerNode: Number(args.slots) };
  console.log(`throughput: ${n} no-op actions in ${throughput.seconds} s = ${throughput.actionsPerSecond} actions/s over ${Object.keys(throughput.nodes).length} nodes ${JSON.stringify(throughput.nodes)}`);
  console.log(`latency at ${rate} actions/s offered (${latency.actions} actions): ready → started p50 ${latency.readyToStartedMs.p50} ms, p99 ${latency.readyToStartedMs.p99} ms (queued → started p50 ${latency.queuedToStartedMs.p50} ms, p99 ${latency.queuedToStartedMs.p99} ms)`);
  console.log(JSON.stringify(out));

  for (const c of children) c.send("stop");
  await Promise.all(children.map((c) => new Promise((r) => c.once("exit", r))));
  head.close();
  await server.close();
  cache.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
