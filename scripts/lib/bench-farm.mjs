// scripts/bench-farm: a real head (gRPC server in this process) and node processes whose registered executor runs
// no tool, so the figures measure Orion's scheduling and wire, not fork() or gcc.
// --part throughput (default): 2 nodes with a no-op executor; actions/s for N independent actions submitted at
//   once, and ready-to-started latency (p50/p99) at a fixed offered load.
// --part scaling: nodes × 4 slots with an executor that sleeps each action's recorded duration; makespan of (a) Redis's
//   recorded graph and (b) six independent copies of its compile profile, against max(critical path, work / slots).
// --part upload: the Redis tree's source context uploaded to a head process over loopback: the first upload (time,
//   bytes), then the re-upload after one edited file; then a node's first provisioning of that tree, blob by blob
//   and as one tar stream.
// Run through scripts/bench-farm; needs a built Orion (make build).
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

const { values: args } = parseArgsOrExit({
  options: {
    node: { type: "string" },
    name: { type: "string" },
    executor: { type: "string", default: "noop" },
    part: { type: "string", default: "throughput" },
    graph: { type: "string", default: new URL("../../../shared/data/redis-7.0.15-graph.json", import.meta.url).pathname },
    "node-counts": { type: "string", default: "1,2,4,6" },
    tarball: { type: "string", default: new URL("../../.cache/redis/redis_7.0.15.orig.tar.gz", import.meta.url).pathname },
    actions: { type: "string", default: "10000" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    slots: { type: "string", default: "8" },
    nodes: { type: "string", default: "2" },
  },
});

/** Bad flags are one line and exit 2, as the rest of Orion's commands. */
function parseArgsOrExit(config) {
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`bench-farm: ${err.message} (scripts/bench-farm --help lists the options)\n`);
    process.exit(2);
  }
}

if (args.node) await runNode(args.node, args.name, Number(args.slots), args.executor);
else if (args.part === "scaling") await runScaling();
else if (args.part === "upload") await runUpload();
else await runHead();

/** A node process: registers with the head; its executor stamps when each action started, then returns at once ("noop") or after argv[1] ms ("sleep"). */
async function runNode(address, name, slots, kind) {
  const conn = connectFarm(address);
  const node = new Node({
    name,
    slots,
    head: conn.nodeControl,
    logger: core.silentLogger,
    toolchains: [{ name: "noop", digest: TOOLCHAIN, path: "" }],
    leaseWaitMs: 1000,
    executor: {
      async execute(req) {
        // The start time rides back in stdout: sub-millisecond, and the head stores it with the result.
        const started = now();
        if (kind === "sleep") await new Promise((r) => setTimeout(r, Number(req.command.arguments[1])));
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

/** A head with its gRPC server in this process; `nodes(n, slots, executor, tag)` starts node processes, `close()` ends everything. */
async function startFarm(durations) {
  const { createBlobStore } = await import(dist + "cas/index.js");
  const { SqliteActionCache } = await import(dist + "cache/index.js");
  const { Head } = await import(dist + "head/index.js");
  const { Directory } = await import(dist + "gen/orion/v1/remote_execution.js");
  const dir = mkdtempSync(join(tmpdir(), "orion-bench-farm-"));
  const store = createBlobStore({ dir: join(dir, "cas") });
  const cache = new SqliteActionCache(join(dir, "ac.db"));
  const head = new Head({ store, cache, durations, clock: core.systemClock, ids: core.randomIds, logger: core.silentLogger, externalDigest: async () => undefined, heartbeatMs: 5000, nodeTtlMs: 60_000 });
  const server = await startFarmServer({ head, store, listen: "127.0.0.1:0", tmpDir: join(dir, "tmp"), logger: core.silentLogger });
  const root = await store.put(Directory.encode({ files: [], directories: [], symlinks: [] }).finish());
  let children = [];
  return {
    head,
    context: { root, files: new Map() },
    async nodes(n, slots, executor, tag) {
      await stopNodes();
      for (let i = 0; i < n; i++) {
        const child = fork(new URL(import.meta.url).pathname, ["--node", server.address, "--name", `${tag}-${i + 1}`, "--slots", String(slots), "--executor", executor], { stdio: "inherit" });
        await new Promise((r) => child.once("message", r));
        children.push(child);
      }
    },
    async close() {
      await stopNodes();
      head.close();
      await server.close();
      cache.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  async function stopNodes() {
    for (const c of children) c.send("stop");
    await Promise.all(children.map((c) => new Promise((r) => c.once("exit", r))));
    children = [];
  }
}

/** A graph action the bench nodes accept: argv[1] is how long the sleeping executor takes. */
function benchAction(id, label, deps, ms = 0) {
  return { id, kind: "other", label, arguments: ["bench", String(ms)], cwd: "", inputs: [], outputs: [], deps, host: false, toolchain: TOOLCHAIN, environmentVariables: [], shell: "" };
}

async function runHead() {
  const farm = await startFarm(undefined);
  const { head, context } = farm;
  const root = context.root;
  await farm.nodes(Number(args.nodes), Number(args.slots), "noop", "bench");
  let nextId = 0;
  const action = () => {
    const id = `a${nextId++}`;
    return benchAction(id, `NOOP ${id}`, []);
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

  await farm.close();
}

/** Makespan of a graph on n nodes × 4 sleeping slots, against its lower bound. */
async function runScaling() {
  const { readFileSync } = await import("node:fs");
  const g = JSON.parse(readFileSync(args.graph, "utf8"));
  const ms = (n) => Math.max(0, Math.round(n.wall_s * 1000));
  const deps = new Map(g.nodes.map((n) => [n.id, []]));
  for (const [from, to] of g.edges) deps.get(to).push(from);
  const redis = g.nodes.map((n) => benchAction(n.id, `${n.kind} ${n.id}`, [...new Set(deps.get(n.id))], ms(n)));
  const compiles = g.nodes.filter((n) => n.kind === "compile");
  const wide = [];
  for (let copy = 0; copy < 6; copy++) for (const n of compiles) wide.push(benchAction(`c${copy}-${n.id}`, `compile ${n.id}`, [], ms(n)));
  // Durations as a second build would know them: the head orders the ready queue by the real critical path.
  const known = new Map([...redis, ...wide].map((a) => [a.label, Number(a.arguments[1])]));
  const farm = await startFarm({ estimate: (_kind, label) => known.get(label), record() {}, close() {} });

  const criticalPath = (actions) => {
    const byId = new Map(actions.map((a) => [a.id, a]));
    const memo = new Map();
    const longest = (id) => {
      if (!memo.has(id)) {
        const a = byId.get(id);
        memo.set(id, Number(a.arguments[1]) + Math.max(0, ...a.deps.map(longest)));
      }
      return memo.get(id);
    };
    return Math.max(...actions.map((a) => longest(a.id)));
  };
  const work = (actions) => actions.reduce((t, a) => t + Number(a.arguments[1]), 0);

  const run = async (actions) => {
    const t0 = now();
    const { buildId } = await farm.head.submitBuild({ contextRoot: farm.context.root, actions, noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/bench" }, farm.context);
    const summary = await new Promise((resolve) => farm.head.watchBuild(buildId, 0, (e) => e.type === "summary" && resolve(e)));
    const makespan = now() - t0;
    farm.head.dropBuild(buildId);
    if (summary.failed || summary.skipped) throw new Error(`bench build failed: ${JSON.stringify(summary)}`);
    return makespan;
  };

  const rows = [];
  const slots = 4;
  for (const n of args["node-counts"].split(",").map(Number)) {
    await farm.nodes(n, slots, "sleep", `n${n}`);
    for (const [name, actions] of [["redis", redis], ["wide", wide]]) {
      const bound = Math.max(criticalPath(actions), work(actions) / (n * slots));
      const makespan = await run(actions);
      const row = { graph: name, nodes: n, slots: n * slots, actions: actions.length, boundS: +(bound / 1000).toFixed(2), makespanS: +(makespan / 1000).toFixed(2), efficiency: +(bound / makespan).toFixed(3) };
      rows.push(row);
      console.log(`${name.padEnd(5)} ${n} node(s) x ${slots} slots: makespan ${row.makespanS} s, bound ${row.boundS} s, ${(row.efficiency * 100).toFixed(1)} % of the bound`);
    }
  }
  console.log(JSON.stringify({ scaling: rows }));
  await farm.close();
}

/** Hashes and uploads the Redis tree to a real `orion head` process, then again after editing one file. */
async function runUpload() {
  const { execFileSync, spawn } = await import("node:child_process");
  const { appendFileSync } = await import("node:fs");
  const { hashTree, uploadTree, StatCache } = await import(dist + "merkle/index.js");
  const dir = mkdtempSync(join(tmpdir(), "orion-bench-upload-"));
  execFileSync("tar", ["xzf", args.tarball, "-C", dir]);
  const tree = join(dir, "redis-7.0.15");
  const headProc = spawn(process.execPath, [new URL("../../bin/orion", import.meta.url).pathname, "head", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "head")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ORION_LOG_LEVEL: "warn" },
  });
  const address = await new Promise((resolve) => headProc.stdout.once("data", (d) => resolve(JSON.parse(String(d).split("\n")[0]).grpc)));
  const conn = connectFarm(address, { shortLived: true }); // as orion build --head connects
  const statCache = new StatCache(join(dir, "stat-cache.db"));
  const measure = async () => {
    const t0 = now();
    const hashed = await hashTree(tree, { statCache });
    const t1 = now();
    const up = await uploadTree(conn.blobs, hashed, tree, { concurrency: 64 });
    const t2 = now();
    return { root: hashed.root, files: hashed.files.size, hashMs: +(t1 - t0).toFixed(1), uploadMs: +(t2 - t1).toFixed(1), blobs: up.uploadedBlobs, bytes: up.uploadedBytes };
  };
  const first = await measure();
  appendFileSync(join(tree, "src", "server.c"), "\n/* edited */\n");
  const edit = await measure();
  const again = await measure();
  console.log(`first upload: ${first.files} files, ${first.blobs} blobs, ${(first.bytes / 1e6).toFixed(1)} MB in ${first.uploadMs} ms (hashing ${first.hashMs} ms)`);
  console.log(`after editing src/server.c: ${edit.blobs} blobs, ${edit.bytes} bytes in ${edit.uploadMs} ms (re-hash ${edit.hashMs} ms); unchanged: ${again.blobs} blobs in ${again.uploadMs} ms`);
  // A node's first provisioning of that context (fresh store, tree loaded, every file materialized):
  // blob by blob through its read-through store, or as one tar stream (TarProvisioner) first.
  const { createBlobStore, readThrough } = await import(dist + "cas/index.js");
  const { loadInputTree, materializeTree } = await import(dist + "exec/index.js");
  const { TarProvisioner } = await import(dist + "node/index.js");
  const nodeConn = connectFarm(address);
  const provision = async (tar) => {
    const nodeDir = mkdtempSync(join(dir, "node-"));
    const local = createBlobStore({ dir: join(nodeDir, "cas") });
    const store = readThrough(local, nodeConn.blobs);
    const t0 = now();
    const inputs = await loadInputTree(store, again.root);
    if (tar) await new TarProvisioner({ local, source: nodeConn.blobs }).provision(again.root, inputs, core.silentLogger);
    await materializeTree(store, inputs, join(nodeDir, "ctx"), { readOnly: false });
    const ms = +(now() - t0).toFixed(1);
    local.close();
    rmSync(nodeDir, { recursive: true, force: true });
    return ms;
  };
  const perBlobMs = [];
  const tarMs = [];
  for (let i = 0; i < 3; i++) {
    perBlobMs.push(await provision(false));
    tarMs.push(await provision(true));
  }
  console.log(`first provisioning on a node: blob by blob ${perBlobMs.join(", ")} ms; one tar stream ${tarMs.join(", ")} ms`);
  nodeConn.close();
  const strip = ({ root, ...rest }) => rest;
  console.log(JSON.stringify({ upload: { first: strip(first), edit: strip(edit), unchanged: strip(again) }, provision: { perBlobMs, tarMs } }));
  conn.close();
  statCache.close();
  headProc.kill("SIGTERM");
  await new Promise((r) => headProc.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
