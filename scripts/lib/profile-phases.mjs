// Times the phases of one `orion build DIR` (embedded), replaying src/cli/main.ts + src/client/build.ts step by step
// against the built modules, so the warm and no-op costs can be split up. Diagnostic only: it builds like the real
// command (same cache dir, same writes) but prints a phase table to stderr instead of the reporter's lines.
//
// Usage: ORION_CACHE_DIR=DIR node scripts/lib/profile-phases.mjs TREE [ORION_ROOT]
const t0 = performance.now();
const marks = [["node start → script", performance.timeOrigin ? t0 : 0]];
const mark = (name) => marks.push([name, performance.now()]);

const [tree, orionRoot = new URL("../..", import.meta.url).pathname] = process.argv.slice(2);
if (!tree) {
  process.stderr.write("usage: ORION_CACHE_DIR=DIR node scripts/lib/profile-phases.mjs TREE [ORION_ROOT]\n");
  process.exit(2);
}
const d = (p) => new URL(`dist/${p}`, `file://${orionRoot.replace(/\/?$/, "/")}`).href;

await import("commander");
mark("import commander");
const core = await import(d("src/core/index.js"));
mark("import core (pino, digest)");
const dag = await import(d("dag-extract/index.js"));
mark("import dag-extract (execa)");
const { loadConfig } = await import(d("src/cli/config.js"));
const { availableParallelism } = await import("node:os");
const { resolve, join } = await import("node:path");
mark("import config");
const { startEmbedded } = await import(d("src/client/embedded.js"));
mark("import embedded (sqlite, grpc-free head/node/exec)");
const { ProgramDigests, findProgram } = await import(d("src/client/programs.js"));
const merkle = await import(d("src/merkle/index.js"));
const cache = await import(d("src/cache/index.js"));
const { OutputWriter } = await import(d("src/client/outputs.js"));
mark("import programs/merkle/cache/outputs");

const dir = resolve(tree);
const cfg = loadConfig({ env: process.env, projectDir: dir, flags: {}, cores: availableParallelism() });
const logger = core.createRootLogger({ level: "warn" });
mark("config + logger");
const embedded = await startEmbedded({ cacheDir: cfg.cacheDir, slots: cfg.jobs, maxCacheBytes: cfg.maxCacheBytes, logger });
mark("startEmbedded (open 3 SQLite DBs, node start)");

const graph = await dag.extractGraph(dir, { makeArgs: [] });
mark(`extractGraph (make -n -w): ${graph.commands.length} commands`);

const statCache = embedded.statCache;
const h0 = statCache.hits, m0 = statCache.misses;
const hashed = await merkle.hashTree(graph.root, { statCache });
mark(`hashTree: ${hashed.files.size} files, stat-cache ${statCache.hits - h0} hits / ${statCache.misses - m0} misses`);
const up = await merkle.uploadTree(embedded.store, hashed, graph.root);
mark(`uploadTree: ${up.uploadedBlobs} blobs uploaded`);

const programs = new ProgramDigests({ memoFile: join(cfg.cacheDir, "toolchains.json") });
const keyed = cache.keyEnv(process.env).map(([name, value]) => ({ name, value }));
const { posix } = await import("node:path");
const actions = await Promise.all(
  graph.commands.map(async (c) => {
    let argv = c.argv, toolchain = "", host = c.host;
    if (!host) {
      const abs = findProgram(c.argv[0], posix.join(graph.root, c.cwd), process.env);
      if (abs) { argv = [abs, ...c.argv.slice(1)]; toolchain = await programs.digest(abs); }
      else { host = true; argv = ["/bin/sh", "-c", c.line]; }
    }
    return { id: c.id, kind: c.kind, label: c.label, arguments: argv, cwd: c.cwd, inputs: c.inputs, outputs: c.outputs, deps: c.deps, host, toolchain, environmentVariables: host ? [] : keyed, shell: c.line };
  }),
);
mark("toGraphActions (findProgram + toolchain digests)");

const head = embedded.head;
const { buildId } = await head.submitBuild(
  { contextRoot: hashed.root, actions, noCache: false, retries: 2, jobs: 0, token: "", projectRoot: graph.root },
  { root: hashed.root, files: hashed.files },
);
const writer = new OutputWriter(embedded.store, statCache, graph.root);
const byId = new Map(actions.map((a) => [a.id, a]));
let firstResult, executed = 0, cached = 0;
const summary = await new Promise((res) => {
  const detach = head.watchBuild(buildId, 0, (e) => {
    if (e.type === "action" && (e.state === "finished" || e.state === "cached" || e.state === "failed")) {
      firstResult ??= performance.now();
      if (e.state === "cached") cached++;
      if (e.state === "finished") executed++;
      const a = byId.get(e.id);
      void head.getResult(buildId, e.id).then((r) => { if (r && e.state !== "failed") writer.write(a.cwd, r); });
    }
    if (e.type === "summary") { res(e); queueMicrotask(() => detach()); }
  });
});
if (firstResult) marks.push(["submit → first result (prepare/lookup)", firstResult]);
mark(`scheduler + cache lookups: ${cached} cached, ${executed} executed, failed ${summary.failed}`);
await writer.flush();
mark("output writes (flush)");
statCache.flush();
await embedded.close();
mark("close (node stop, SQLite close)");

const startup = performance.timeOrigin ? t0 : 0;
let prev = 0;
const rows = [["process start → first script line (node boot)", t0]];
prev = t0;
for (const [name, t] of marks.slice(1)) {
  rows.push([name, t - prev]);
  prev = t;
}
const total = prev;
process.stderr.write(rows.map(([n, ms]) => `${ms.toFixed(1).padStart(9)} ms  ${n}`).join("\n") + `\n${total.toFixed(1).padStart(9)} ms  total (from process start)\n`);
void startup;
