// The `orion` command line: parses flags and config, wires the parts, maps every failure to the Contract's exit codes.
import { availableParallelism, homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option, type OptionValues } from "commander";
import { errorMessage, ExitCode, OrionError, UsageError } from "../core/errors.js";
import { MAX_NO_NODE_TIMEOUT_MS, parseDuration } from "../core/duration.js";
import { ExtractError } from "../../dag-extract/errors.js";
import { defaultCacheDir, loadConfig, type Config, type ResolvedConfig } from "./config.js";
import type { CcConfig } from "../cc/command.js";
import { MASQUERADE_NAMES } from "../cc/compiler.js";
import { Reporter, type ReporterMode } from "./reporter.js";
import { type CliIo, type CliOutput, NotServed, processIo } from "./io.js";
import type { BuildEvent } from "../scheduler/index.js";
import type { BuildsApi } from "../head/api.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache } from "../merkle/index.js";
import type { Logger } from "../core/logger.js";
import type { StepCache } from "../steps/step-cache.js";

const VERSION = "0.1.0";

/** A duration flag ("60s", "2m"; at most `maxMs`): checked here, so a bad one is commander's one line and exit 2; kept as written. */
function durationOption(name: string, maxMs: number) {
  return (value: string): string => {
    try {
      parseDuration(value, name, maxMs);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return value;
  };
}

function intOption(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) throw new InvalidArgumentError(`${name} takes a whole number ≥ ${min}, not ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** Splits `orion build DIR -- ARGS` before commander sees it: ARGS belong to the project's build tool. */
function splitPassThrough(argv: string[]): { ours: string[]; passThrough: string[] } {
  const i = argv.indexOf("--");
  return i < 0 ? { ours: argv, passThrough: [] } : { ours: argv.slice(0, i), passThrough: argv.slice(i + 1) };
}

function projectDir(dir: string | undefined, cwd = process.cwd()): string {
  const abs = resolve(cwd, dir ?? ".");
  if (!existsSync(abs)) throw new UsageError(`no such directory: ${abs}`);
  if (!statSync(abs).isDirectory()) throw new UsageError(`not a directory: ${abs}`);
  return abs;
}

function config(flags: Config, dir: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  return loadConfig({ env, projectDir: dir, flags, cores: availableParallelism() });
}

async function buildCommand(
  dirArg: string | undefined,
  opts: { json?: boolean; jobs?: number; cache?: boolean; retries?: number; nodeTimeout?: string | boolean; head?: string; token?: string; tlsCa?: string; tlsCert?: string; tlsKey?: string; unsandboxed?: boolean; driver?: "make" | "graph" },
  passThrough: string[],
  io: CliIo,
): Promise<number> {
  const dir = projectDir(dirArg, io.cwd);
  // commander reads --no-node-timeout as the negation of "node-timeout": its value, when given, is that attribute's.
  const noNodeTimeout = typeof opts.nodeTimeout === "string" ? opts.nodeTimeout : undefined;
  const cfg = await config({ jobs: opts.jobs, retries: opts.retries, noNodeTimeout, noCache: opts.cache === false ? true : undefined, head: opts.head, token: opts.token, tlsCa: opts.tlsCa, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, unsandboxed: opts.unsandboxed, driver: opts.driver }, dir, io.env);
  // A tree without a Makefile (a compile database alone) has no make to drive: its graph is the database.
  const hasMakefile = ["GNUmakefile", "makefile", "Makefile"].some((f) => existsSync(join(dir, f)));
  const makeDriven = cfg.driver !== "graph" && hasMakefile;
  if (io.server && !makeDriven) throw new NotServed("only make-driven builds are served");
  const mode: ReporterMode = opts.json ? "json" : io.stdout.isTTY ? "tty" : "plain";
  const reporter = new Reporter(mode, io.stdout);

  // Ctrl-C is ours from here on, extraction included: the Contract's 130, never a death by signal.
  const abort = new AbortController();
  const stopOnInterrupt = interruptHandling(io, abort);
  try {
    const jobsGiven = opts.jobs !== undefined || !!io.env.ORION_JOBS;
    if (makeDriven) return await makeDrivenBuild(dir, cfg, reporter, passThrough, abort.signal, jobsGiven, io);
    return await extractAndBuild(dir, cfg, reporter, passThrough, abort.signal);
  } catch (err) {
    // make's dry run killed by the same Ctrl-C (a terminal signals the whole group) is the interrupt, not an error.
    if (abort.signal.aborted) return ExitCode.INTERRUPTED;
    throw err;
  } finally {
    stopOnInterrupt();
  }
}

/**
 * The first interrupt stops the build (it then exits 130); in a process of its own a second one exits at once. A served
 * build's interrupt is its client's (whose second Ctrl-C exits the client). Returns the undo.
 */
function interruptHandling(io: CliIo, abort: AbortController): () => void {
  const stop = () => {
    if (abort.signal.aborted) return;
    io.stderr.write("\norion: interrupted; stopping the build\n");
    abort.abort();
  };
  if (io.interrupt) {
    if (io.interrupt.aborted) stop();
    io.interrupt.addEventListener("abort", stop, { once: true });
    return () => io.interrupt!.removeEventListener("abort", stop);
  }
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}

async function extractAndBuild(dir: string, cfg: ResolvedConfig, reporter: Reporter, passThrough: string[], signal: AbortSignal): Promise<number> {
  // Modules load as late as they can: a no-op build (make has nothing to do) must stay well under 0.3 s.
  const { extractGraph } = await import("../../dag-extract/index.js");
  const graph = await extractGraph(dir, { makeArgs: passThrough });
  if (signal.aborted) return ExitCode.INTERRUPTED;
  for (const note of graph.notes ?? []) process.stderr.write(`orion: ${note}\n`);
  if (graph.commands.every((c) => c.printsOnly)) {
    // Nothing to build (make would only print its messages, as Redis's "Hint: ..."): no head, no cache.
    const { reportEmptyBuild } = await import("../client/empty.js");
    return reportEmptyBuild(graph, (e) => reporter.onEvent(e));
  }

  const { createRootLogger } = await import("../core/logger.js");
  const { runBuild, reportUnsubmitted } = await import("../client/build.js");
  const { ProgramDigests } = await import("../cache/program-digests.js");
  const { toolchainMemoFiles } = await import("../cache/toolchain.js");
  const logger = createRootLogger({ level: cfg.logLevel, file: cfg.logFile });

  const opened = performance.now();
  const open = await openBackend(cfg, logger, reporter);
  if (!open) {
    // The client cache's disk is full before anything was submitted: its one line is out; the summary follows, exit 3.
    reportUnsubmitted(graph, (e) => reporter.onEvent(e), performance.now() - opened);
    return ExitCode.INFRASTRUCTURE;
  }
  const { backend, stepCache } = open;
  try {
    // Interrupted while the head and node started: nothing was submitted yet.
    if (signal.aborted) return ExitCode.INTERRUPTED;
    const outcome = await runBuild({
      graph,
      noCache: cfg.noCache,
      retries: cfg.retries,
      noNodeTimeoutMs: parseDuration(cfg.noNodeTimeout, "noNodeTimeout"),
      head: backend.head,
      store: backend.store,
      statCache: backend.statCache,
      programs: new ProgramDigests({ memoFile: toolchainMemoFiles(cfg.cacheDir, process.env) }),
      logger,
      ...reporterSinks(reporter),
      signal,
      inProcess: backend.inProcess,
      stepCache,
      hostJobs: cfg.jobs,
      cacheDir: cfg.cacheDir,
    });
    return outcome.exitCode;
  } finally {
    stepCache.close();
    await backend.close();
  }
}

/** make drives the build; Orion answers its tool calls (runDriven). */
async function makeDrivenBuild(dir: string, cfg: ResolvedConfig, reporter: Reporter, passThrough: string[], signal: AbortSignal, jobsGiven: boolean, io: CliIo): Promise<number> {
  const { createRootLogger, runDriven, projectRoot, CcService, planLine, orionLauncher, openCacheDir, ToolCache, ProgramDigests, toolchainMemoFiles, defaultSelfPaths, openStepLines } = await loadDrivenBuild();
  const logger = createRootLogger({ level: cfg.logLevel, file: cfg.logFile, stream: io.server ? io.stderr : undefined });
  const launcher = orionLauncher();
  if (!launcher) throw new Error("cannot find this checkout's bin/orion");
  const nativeDir = join(dirname(dirname(launcher)), "native", "build");
  // A cache dir that cannot be made is the user's to fix (exit 2), before make starts: stores open on first use.
  openCacheDir(cfg.cacheDir);
  // Started now rather than after the build (unless it runs): it is listening by the time this build ends, so the next
  // `orion build` is served warm at once — a short build is over before Node could start one. It loads a build's
  // modules and opens its stores only once this build has ended (--warm-after), not beside it.
  if (!io.server) void startBuildServer(launcher, io.env, process.pid);
  // Served: the agent's cc service for this cache, whose stat cache and open stores outlive the build.
  const ccOptions = { cacheDir: cfg.cacheDir, noCache: cfg.noCache, maxCacheBytes: cfg.maxCacheBytes };
  const cc = io.server?.ccService(ccOptions) ?? new CcService({ ...ccOptions, logger });
  const programs = new ProgramDigests({ memoFile: toolchainMemoFiles(cfg.cacheDir, io.env) });
  const tools = cfg.noCache ? undefined : new ToolCache({ stores: () => cc.openStores(), programs, selfPaths: defaultSelfPaths(), logger });
  const steps = cfg.noCache ? undefined : openStepLines({ cacheDir: cfg.cacheDir, stores: () => cc.openStores(), root: projectRoot(dir), jobs: cfg.jobs, env: io.env, logger, signal });
  try {
    const outcome = await runDriven({
      dir,
      makeArgs: passThrough,
      jobs: jobsGiven ? cfg.jobs : await drivenJobs(cfg),
      env: io.env,
      cc,
      tools,
      planLine,
      steps: steps?.lines,
      farm: cfg.head ? { head: cfg.head, token: cfg.token, tlsCa: cfg.tlsCa, tlsCert: cfg.tlsCert, tlsKey: cfg.tlsKey } : undefined,
      nativeDir,
      historyFile: join(cfg.cacheDir, "drive-history.json"),
      objectDir: join(cfg.cacheDir, "objs"),
      whole: cfg.noCache ? undefined : { cacheDir: cfg.cacheDir, stores: () => cc.openStores(), programs },
      logger,
      ...reporterSinks(reporter, io.stderr),
      signal,
    });
    return outcome.exitCode;
  } finally {
    steps?.close();
    if (!io.server) {
      cc.close();
      // Again (a no-op when it answers): one started with a build longer than its idle time has exited by now.
      await startBuildServer(launcher, io.env);
    }
  }
}

/**
 * What a make-driven build loads, in one place: the build server loads it as soon as it listens (loadDrivenBuild is
 * its warm-up), so the first build it serves does not pay for module loading either.
 */
export async function loadDrivenBuild() {
  const [logger, drive, service, shell, compiler, store, programDigests, toolchain, stepLines] = await Promise.all([
    import("../core/logger.js"),
    import("../drive/index.js"),
    import("../cc/service.js"),
    import("../shell/index.js"),
    import("../cc/compiler.js"),
    import("../store/index.js"),
    import("../cache/program-digests.js"),
    import("../cache/toolchain.js"),
    import("../drive/step-lines.js"),
  ]);
  return {
    createRootLogger: logger.createRootLogger,
    runDriven: drive.runDriven,
    projectRoot: drive.projectRoot,
    ToolCache: drive.ToolCache,
    CcService: service.CcService,
    planLine: shell.planLine,
    orionLauncher: compiler.orionLauncher,
    defaultSelfPaths: compiler.defaultSelfPaths,
    openCacheDir: store.openCacheDir,
    ProgramDigests: programDigests.ProgramDigests,
    toolchainMemoFiles: toolchain.toolchainMemoFiles,
    openStepLines: stepLines.openStepLines,
  };
}

/**
 * During a build in its own process, the per-user agent is started (detached, unless it runs or ORION_BUILD_SERVER=0)
 * so the next `orion build` is served warm by it: no Node start-up, stores and stat cache already open.
 */
async function startBuildServer(script: string, env: NodeJS.ProcessEnv, warmAfter?: number): Promise<void> {
  if (env.ORION_BUILD_SERVER === "0" || env.ORION_NO_AGENT === "1") return;
  const { startAgentInBackground } = await import("../agent/command.js");
  await startAgentInBackground(script, env, warmAfter);
}

/**
 * make's -j when the user gave none: the cores here, plus on a farm every slot of its live nodes (compile misses run
 * there; links, archives and steps here).
 */
async function drivenJobs(cfg: ResolvedConfig): Promise<number> {
  if (!cfg.head) return cfg.jobs;
  const { connectBuild } = await import("./farm.js");
  try {
    const conn = await connectBuild(cfg.head, { token: cfg.token, tlsCa: cfg.tlsCa, tlsCert: cfg.tlsCert, tlsKey: cfg.tlsKey });
    try {
      const s = await conn.builds.getStatus();
      return cfg.jobs + s.nodes.filter((n) => n.state === "alive").reduce((sum, n) => sum + n.slots, 0);
    } finally {
      conn.close();
    }
  } catch {
    // An unreachable farm: each compile says so once and runs here.
    return cfg.jobs;
  }
}

/** Where a build's events and diagnostics go: the reporter owns stdout; diagnostics go to stderr on a clean line. */
function reporterSinks(reporter: Reporter, stderr: CliOutput = process.stderr): { onEvent(e: BuildEvent): void; diagnostics(chunk: string | Uint8Array): void } {
  return {
    onEvent: (e) => reporter.onEvent(e),
    diagnostics: (chunk) => {
      reporter.beforeDiagnostics();
      stderr.write(chunk);
    },
  };
}

/** Where a build runs: a farm's head, or the embedded head and node — the same runBuild either way. */
interface Backend {
  head: BuildsApi;
  store: BlobStore;
  statCache: StatCache;
  inProcess: boolean;
  close(): Promise<void>;
}

/**
 * The farm (--head / ORION_HEAD) or the embedded head and node, and the step cache. Undefined, with its one line on
 * stderr, when the client cache's disk is full.
 */
async function openBackend(cfg: ResolvedConfig, logger: Logger, reporter: Reporter): Promise<{ backend: Backend; stepCache: StepCache } | undefined> {
  let backend: Backend | undefined;
  try {
    backend = cfg.head ? await connectFarm(cfg.head, cfg) : await startEmbeddedBackend(cfg, logger, reporter);
    const { openCacheDir } = await import("../store/index.js");
    return { backend, stepCache: openCacheDir(cfg.cacheDir).stepCache() };
  } catch (err) {
    const { isDiskFullAt, diskFullLine } = await import("../core/disk-full.js");
    if (!isDiskFullAt(err, cfg.cacheDir)) throw err;
    await backend?.close().catch(() => undefined);
    process.stderr.write(`orion: ${diskFullLine(err, "the client cache", cfg.cacheDir)}\n`);
    return undefined;
  }
}

async function connectFarm(head: string, cfg: ResolvedConfig): Promise<Backend> {
  const { connectBuild } = await import("./farm.js");
  const { openCacheDir } = await import("../store/index.js");
  const conn = await connectBuild(head, { token: cfg.token, tlsCa: cfg.tlsCa, tlsCert: cfg.tlsCert, tlsKey: cfg.tlsKey });
  const statCache = openCacheDir(cfg.cacheDir).statCache();
  return {
    head: conn.builds,
    store: conn.blobs,
    statCache,
    inProcess: false,
    async close() {
      conn.close();
      statCache.close();
    },
  };
}

async function startEmbeddedBackend(cfg: ResolvedConfig, logger: Logger, reporter: Reporter): Promise<Backend> {
  const { startEmbedded } = await import("../wiring/embedded.js");
  const embedded = await startEmbedded({
    cacheDir: cfg.cacheDir,
    slots: cfg.jobs,
    maxCacheBytes: cfg.maxCacheBytes,
    logger,
    unsandboxed: cfg.unsandboxed,
    // One plain line, not a log record: the user can act on it (or silence it).
    onSandboxUnavailable: (reason) => {
      reporter.beforeDiagnostics();
      process.stderr.write(`orion: warning: actions run unsandboxed: ${reason} (--unsandboxed or ORION_UNSANDBOXED=1 says so on purpose)\n`);
    },
  });
  return { head: embedded.head, store: embedded.store, statCache: embedded.statCache, inProcess: true, close: () => embedded.close() };
}

async function graphCommand(dirArg: string | undefined, opts: { format: string }, passThrough: string[]): Promise<number> {
  const dir = projectDir(dirArg);
  const { extractGraph, toDot, toJson } = await import("../../dag-extract/index.js");
  const graph = await extractGraph(dir, { makeArgs: passThrough, always: true });
  process.stdout.write(opts.format === "dot" ? toDot(graph) : toJson(graph));
  return ExitCode.OK;
}

async function cacheCommand(action: "stats" | "clear", opts: { json?: boolean }): Promise<number> {
  const cfg = await config({}, undefined);
  const { openCacheDir } = await import("../store/index.js");
  const open = openCacheDir(cfg.cacheDir);
  const store = open.store(cfg.maxCacheBytes);
  const cache = open.cache();
  const steps = open.stepCache();
  try {
    if (action === "clear") {
      cache.clear();
      steps.clear();
      process.stdout.write(`orion: cleared the action cache and the step cache in ${cfg.cacheDir}\n`);
      return ExitCode.OK;
    }
    const { CcStats } = await import("../cc/stats.js");
    const s = { cacheDir: cfg.cacheDir, ...cache.stats(), steps: steps.count(), ...CcStats.readCounts(cfg.cacheDir), bytesStored: store.sizeBytes() };
    process.stdout.write(opts.json ? JSON.stringify(s) + "\n" : Object.entries(s).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n");
    return ExitCode.OK;
  } finally {
    cache.close();
    steps.close();
    store.close();
  }
}


/** Configuration variables other than ORION_CACHE_DIR that need the full (zod-validated) loader. */
const CC_SLOW_CONFIG_ENV = ["ORION_MAX_CACHE_BYTES", "ORION_NO_CACHE", "ORION_LOG_LEVEL", "ORION_LOG_FILE"];

/**
 * The configuration one compile call needs. With no user config file and only ORION_CACHE_DIR set (the
 * common case) it skips the full loader, whose validator costs ~120 ms to load — paid on every compile.
 * Orion logs to stderr only when asked (ORION_LOG_LEVEL): stderr belongs to the compiler.
 */
async function ccConfig(env: Record<string, string>): Promise<CcConfig> {
  const { silentLogger, createRootLogger } = await import("../core/logger.js");
  const userFile = join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "orion", "config.json");
  if (!existsSync(userFile) && CC_SLOW_CONFIG_ENV.every((k) => !env[k])) {
    return { cacheDir: env.ORION_CACHE_DIR || defaultCacheDir(env), maxCacheBytes: 10 * 1024 ** 3, noCache: false, logger: silentLogger };
  }
  const cfg = await loadConfig({ env, flags: {}, cores: availableParallelism() });
  const logger = cfg.logFile || env.ORION_LOG_LEVEL ? createRootLogger({ level: cfg.logLevel, file: cfg.logFile }) : silentLogger;
  return { cacheDir: cfg.cacheDir, maxCacheBytes: cfg.maxCacheBytes, noCache: cfg.noCache, logger };
}

async function ccCommand(compilerArgv: string[]): Promise<number> {
  const { ccCommand: run } = await import("../cc/command.js");
  return run(compilerArgv, { config: ccConfig });
}

async function masqueradeCommand(dir: string): Promise<number> {
  const { createMasquerade, masqueradeTarget } = await import("../cc/masquerade.js");
  const target = masqueradeTarget();
  const r = createMasquerade(dir, target, process.env, process.cwd());
  process.stdout.write(`orion: ${r.dir}: ${r.links.join(", ")} -> ${target}\nUse it with: PATH=${r.dir}:$PATH make -j\n`);
  return ExitCode.OK;
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  if (io.server && argv[0] !== "build") throw new NotServed(`\`orion ${argv[0] ?? ""}\` is not served`);
  // `orion cc` and masquerade calls bypass commander: every argument after the compiler is the compiler's.
  const invokedAs = basename(process.argv[1] ?? "");
  try {
    // Invoked under a masquerade link's name (`orion masquerade`): `gcc ARGS` means `orion cc gcc ARGS`.
    if (MASQUERADE_NAMES.includes(invokedAs)) return await ccCommand([invokedAs, ...argv]);
    if (argv[0] === "cc") return await ccCommand(argv.slice(1));
  } catch (err) {
    return reportError(err, io);
  }
  const { ours, passThrough } = splitPassThrough(argv);
  let exitCode: number = ExitCode.OK;
  const done: Done = (code) => {
    exitCode = code;
  };
  const program = new Command("orion")
    .description("Distributed build execution for C and C++: whole-graph scheduling, Merkle action caching, a remote-compile farm.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: (s, write) => write(s.startsWith("error:") ? `orion: ${s.slice(7)}` : s) })
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      `
Start here: \`orion build DIR\` builds a Makefile project through the cache (\`--json\` for NDJSON events).
Exit codes: 0 success, 1 the build failed, 2 usage or configuration error, 3 infrastructure, 130 interrupted.
Configuration: flags > ORION_* environment > DIR/.orion.json > $XDG_CONFIG_HOME/orion/config.json.
Cache: $ORION_CACHE_DIR or $XDG_CACHE_HOME/orion (~/.cache/orion).`,
    );
  addBuildCommand(program, passThrough, done, io);
  addFarmCommands(program, done);
  addProjectCommands(program, passThrough, done);
  addCacheCommands(program, done);

  try {
    await program.parseAsync(ours, { from: "user" });
    return exitCode;
  } catch (err) {
    if (err instanceof NotServed) throw err;
    return reportError(err, io);
  }
}

/** How a command's action hands back its exit code. */
type Done = (exitCode: number) => void;

function addBuildCommand(program: Command, passThrough: string[], done: Done, io: CliIo): void {
  program
    .command("build")
    .description("build DIR (default .) through Orion's scheduler and cache; ARGS after -- go to make (targets, VAR=value)")
    .argument("[dir]", "the project directory (with a Makefile or compile_commands.json)")
    .option("--json", "print the build events as NDJSON on stdout, ending with the summary")
    .option("-j, --jobs <n>", "tools running at once, as make -j (default: one per core)", intOption("--jobs", 1))
    .option("--no-cache", "neither read nor write the action cache")
    .addOption(new Option("--driver <who>", "make: make drives the build, its tool calls reach Orion through shims; graph: Orion schedules make's dry run (ORION_DRIVER)").choices(["make", "graph"]))
    .option("--unsandboxed", "the embedded node runs tools without its bubblewrap sandbox (ORION_UNSANDBOXED=1; for benchmarks)")
    .option("--retries <n>", "extra attempts after an infrastructure failure (default 2)", intOption("--retries", 0))
    .option(
      "--no-node-timeout <duration>",
      "on a farm, how long actions wait while no node can run them (every node gone) before the build exits 3 (default 60s, at most 7d; ORION_NO_NODE_TIMEOUT). With make driving (the default for a Makefile tree), compiles never wait: with no node they compile here",
      durationOption("--no-node-timeout", MAX_NO_NODE_TIMEOUT_MS),
    )
    .option("--head <host:port>", "build on a farm: its head's address (ORION_HEAD); the embedded head and node when absent")
    .option("--token <token>", "the farm's token (ORION_TOKEN)")
    .option("--tls-ca <file>", "reach the head over TLS, checking its certificate against this CA (ORION_TLS_CA)")
    .option("--tls-cert <file>", "present this PEM client certificate to a head that asks for one (with --tls-key; ORION_TLS_CERT)")
    .option("--tls-key <file>", "the PEM private key of --tls-cert (ORION_TLS_KEY)")
    .addHelpText("after", "\nExamples:\n  orion build ./fixtures/multi-c\n  orion build . --json -- CFLAGS=-O0 all\n  orion build --head 10.0.0.5:50050 --token $T ./proj\n")
    .action(async (dir: string | undefined, opts) => {
      done(await buildCommand(dir, opts, passThrough, io));
    });
}

/** The farm's daemons and the view of them: `orion head`, `orion node`, `orion status`. */
function addFarmCommands(program: Command, done: Done): void {
  const head = program
    .command("head")
    .description("run a farm's head: the scheduler, action cache and CAS that nodes and builds connect to over gRPC (until SIGTERM)")
    .addHelpText("after", '\nIts first line on stdout is {"type":"listening","grpc":"HOST:PORT"}.\n')
    .option("--listen <host:port>", "address to serve on; port 0 picks a free one (default 127.0.0.1:50050)")
    .option("--data-dir <dir>", "state: CAS, action cache, durations (default $XDG_STATE_HOME/orion/head)")
    .option("--token <token>", "require this token from clients (ORION_TOKEN); from nodes too when --node-token is absent")
    .option("--node-token <token>", "require this token from nodes, and refuse it for builds (ORION_NODE_TOKEN)")
    .option("--heartbeat-ms <n>", "how often nodes report (default 5000)", intOption("--heartbeat-ms", 10))
    .option("--node-ttl-ms <n>", "evict a node silent this long and re-queue its work (default 3 heartbeats)", intOption("--node-ttl-ms", 10))
    .option("--insecure", "allow a non-loopback --listen without a token")
    .option("--tls-cert <file>", "serve TLS with this PEM certificate chain (with --tls-key)")
    .option("--tls-key <file>", "the PEM private key of --tls-cert")
    .option("--tls-client-ca <file>", "nodes and clients must present a certificate signed by this CA (mutual TLS)");
  withDaemonFiles(head).action(daemonAction(done, runHead));

  const node = program
    .command("node")
    .description("run a farm node: leases actions from the head when a slot is free and runs them in sandboxes (until SIGTERM)")
    .option("--head <host:port>", "the head's address (ORION_HEAD)")
    .option("--name <name>", "the node's name (default: the one kept in --data-dir, else the host name; the head makes it unique)")
    .option("--slots <n>", "actions at once (default: one per core)", intOption("--slots", 1))
    .option("--data-dir <dir>", "the node's CAS, sandboxes and name (default $XDG_STATE_HOME/orion/node)")
    .option("--node-token <token>", "the farm's node token (ORION_NODE_TOKEN), presented to the head and required from peers")
    .option("--token <token>", "a farm's shared token (ORION_TOKEN), used when it has no node token")
    .option("--tls-ca <file>", "reach the head over TLS, checking its certificate against this CA (ORION_TLS_CA)")
    .option("--tls-cert <file>", "this node's PEM certificate: it serves its blobs to peers over TLS with it and presents it to the head and peers (with --tls-key)")
    .option("--tls-key <file>", "the PEM private key of --tls-cert")
    .option("--tls-client-ca <file>", "peers must present a certificate signed by this CA (mutual TLS)")
    .option("--toolchain <name=path...>", "a program this node runs (repeatable; default gcc, g++, cc, c++, clang, clang++, ar, ranlib on PATH)")
    .option("--listen <host:port>", "serve this node's blobs to peers here (default 127.0.0.1:0, a free port)")
    .option("--advertise <host:port>", "the address peers reach this node at, when it differs from --listen")
    .option("--insecure", "allow a non-loopback --listen without a token");
  withDaemonFiles(node)
    .option("--unsandboxed", "run actions without the bubblewrap sandbox (ORION_UNSANDBOXED=1); without it, a node that cannot sandbox refuses to start")
    .action(daemonAction(done, runNode));

  program
    .command("status")
    .description("show a farm's nodes (slots, running, toolchains, last heartbeat) and running builds")
    .option("--head <host:port>", "the head's address (ORION_HEAD; default 127.0.0.1:50050)")
    .option("--token <token>", "the farm's token (ORION_TOKEN)")
    .option("--tls-ca <file>", "reach the head over TLS, checking its certificate against this CA (ORION_TLS_CA)")
    .option("--tls-cert <file>", "present this PEM client certificate to a head that asks for one (with --tls-key; ORION_TLS_CERT)")
    .option("--tls-key <file>", "the PEM private key of --tls-cert (ORION_TLS_KEY)")
    .option("--json", "one JSON object")
    .action(async (opts) => {
      const cfg = await config({ head: opts.head, token: opts.token, tlsCa: opts.tlsCa, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey }, undefined);
      const { statusCommand, DEFAULT_HEAD } = await import("./farm.js");
      done(await statusCommand({ head: cfg.head ?? DEFAULT_HEAD, token: cfg.token, tlsCa: cfg.tlsCa, tlsCert: cfg.tlsCert, tlsKey: cfg.tlsKey, json: opts.json }));
    });
}

/** The test-hygiene flags both daemons take (distcc's habit): where their log goes and where their pid is left. */
function withDaemonFiles(command: Command): Command {
  return command
    .option("--log-file <file>", "JSON log lines here instead of stderr")
    .option("--pid-file <file>", "write the process id here while running");
}

/** Runs a daemon with its flags and the user's configuration; its exit code. */
type DaemonRun = (farm: typeof import("./farm.js"), opts: OptionValues, cfg: ResolvedConfig) => Promise<number>;

/** A daemon's action: the user's configuration read and farm.js loaded first (only when a daemon runs). */
function daemonAction(done: Done, run: DaemonRun) {
  return async (opts: OptionValues) => {
    const cfg = await config({}, undefined);
    const farm = await import("./farm.js");
    done(await run(farm, opts, cfg));
  };
}

const runHead: DaemonRun = (farm, opts, cfg) =>
  farm.headCommand({ ...opts, token: opts.token ?? cfg.token, nodeToken: opts.nodeToken ?? cfg.nodeToken, ...daemonLogging(opts, cfg) });

const runNode: DaemonRun = (farm, opts, cfg) =>
  farm.nodeCommand({
    ...opts,
    unsandboxed: opts.unsandboxed ?? cfg.unsandboxed,
    head: opts.head ?? cfg.head,
    token: opts.token ?? cfg.token,
    nodeToken: opts.nodeToken ?? cfg.nodeToken,
    tlsCa: opts.tlsCa ?? cfg.tlsCa,
    tlsCert: opts.tlsCert ?? cfg.tlsCert,
    tlsKey: opts.tlsKey ?? cfg.tlsKey,
    ...daemonLogging(opts, cfg),
  });

/** A daemon's log: its --log-file, else the configured one; its level from ORION_LOG_LEVEL only. */
function daemonLogging(opts: OptionValues, cfg: ResolvedConfig): { logFile: string | undefined; logLevel: string } {
  return { logFile: opts.logFile ?? cfg.logFile, logLevel: process.env.ORION_LOG_LEVEL ?? "info" };
}

/** What works on a project or a compile without a build: `orion graph`, `orion agent`, `orion cc`, `orion masquerade`. */
function addProjectCommands(program: Command, passThrough: string[], done: Done): void {
  program
    .command("graph")
    .description("print the build graph of DIR: every command make would run, classified, with inputs, outputs and dependencies")
    .argument("[dir]", "the project directory")
    .addOption(new Option("--format <format>", "output format").choices(["json", "dot"]).default("json"))
    .action(async (dir: string | undefined, opts) => {
      done(await graphCommand(dir, opts, passThrough));
    });

  program
    .command("agent", { hidden: true })
    .description("serve `orion cc` calls on a unix socket until idle (the native client starts it on demand)")
    .option("--socket <path>", "the socket to listen on (default: ORION_AGENT_SOCKET, else under XDG_RUNTIME_DIR or the cache dir)")
    .option("--idle-ms <n>", "exit after this long without a call (default: ORION_AGENT_IDLE_MS, else 10 minutes)", intOption("--idle-ms", 1))
    .option("--foreground", "serve in this process instead of starting a detached agent")
    .option("--warm-after <pid>", "load what a build needs only once this process (the build that started the agent) has ended", intOption("--warm-after", 1))
    .action(async (opts: { socket?: string; idleMs?: number; foreground?: boolean; warmAfter?: number }) => {
      const cfg = await config({}, undefined);
      const { runAgentCommand } = await import("../agent/command.js");
      done(await runAgentCommand({ ...opts, cacheDir: cfg.cacheDir, logLevel: cfg.logLevel, logFile: cfg.logFile, env: process.env, script: process.argv[1] ?? "", buildServer: async (logger) => (await import("./build-server.js")).buildServer(logger, { cacheDir: cfg.cacheDir, noCache: cfg.noCache, maxCacheBytes: cfg.maxCacheBytes }) }));
    });

  program
    .command("cc")
    .description("run COMPILER ARGS through the cache — a drop-in CC: make -j CC=\"orion cc gcc\"; output and exit code are the compiler's")
    .argument("<compiler>", "the compiler (gcc, clang, a path)")
    .argument("[args...]", "its arguments, passed through untouched")
    .allowUnknownOption()
    .helpOption(false)
    .action(async (compiler: string, args: string[]) => {
      // Reached only through `orion help cc`-style paths: main() hands `orion cc ...` to ccCommand before commander parses.
      done(await ccCommand([compiler, ...args]));
    });

  program
    .command("masquerade")
    .description("fill DIR with gcc, cc, g++, c++ (and clang, clang++) links to orion; PATH=DIR:$PATH make caches every compile")
    .argument("<dir>", "the directory to fill (created when absent)")
    .action(async (dir: string) => {
      done(await masqueradeCommand(dir));
    });
}

function addCacheCommands(program: Command, done: Done): void {
  const cache = program.command("cache").description("inspect or clear the local cache");
  cache
    .command("stats")
    .description("entries and bytes in the action cache and the CAS, and the orion cc counters (hits, misses, uncacheable, localCompiles, remoteCompiles, fallbacks)")
    .option("--json", "one JSON object")
    .action(async (opts) => {
      done(await cacheCommand("stats", opts));
    });
  cache
    .command("verify")
    .description("hash every stored blob, drop rotten or missing ones and repair the index (rows without files, files without rows); prints what it repaired")
    .option("--data-dir <dir>", "check a head's or node's store (its --data-dir) instead of this user's cache")
    .option("--json", "one JSON object")
    .action(async (opts: { dataDir?: string; json?: boolean }) => {
      const { cacheVerifyCommand } = await import("./cache-verify.js");
      const cfg = opts.dataDir === undefined ? await config({}, undefined) : undefined;
      done(await cacheVerifyCommand(opts, cfg?.cacheDir ?? ""));
    });
  cache
    .command("clear")
    .description("forget every cached action result")
    .action(async () => {
      done(await cacheCommand("clear", {}));
    });
}

function reportError(err: unknown, io: Pick<CliIo, "stderr" | "env">): number {
  if (err instanceof CommanderError) {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return ExitCode.OK;
    // commander already printed its one line.
    return ExitCode.USAGE;
  }
  if (err instanceof ExtractError) {
    if (err.stderr) io.stderr.write(err.stderr.endsWith("\n") ? err.stderr : err.stderr + "\n");
    io.stderr.write(`orion: ${err.message.split("\n")[0]}\n`);
    return err.exitCode === undefined ? ExitCode.USAGE : ExitCode.BUILD_FAILED;
  }
  if (err instanceof OrionError) {
    io.stderr.write(`orion: ${err.message}\n`);
    return err.exitCode;
  }
  // A system error (ENOSPC, EACCES, EIO…) names its path in its message; anything else is Orion's bug.
  const errno = (err as NodeJS.ErrnoException)?.code;
  io.stderr.write(typeof errno === "string" ? `orion: ${errorMessage(err)}\n` : `orion: internal error: ${errorMessage(err)}\n`);
  if (io.env.ORION_DEBUG) io.stderr.write(`${(err as Error)?.stack ?? ""}\n`);
  return ExitCode.INFRASTRUCTURE;
}

