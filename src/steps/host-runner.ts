// Runs one host step in the real tree: restored from the step cache when every input it read last time is unchanged,
// else run — traced (by the preload library, else strace) when it can be, so that a successful run can be cached.
// Against a tree hashed up front (the client's host-step loop) or the live file system (a line make runs, other lines
// running beside it); several steps may run through one runner at once.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Logger, errorMessage } from "../core/index.js";
import { findProgram } from "../core/programs.js";
import { parseDigestKey } from "../core/digest.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache, TreeEntry } from "../merkle/index.js";
import { runHostStep } from "./host-step.js";
import { PARENT_MAKE_VARS, RUNS_MAKE } from "../../dag-extract/make.js";
import { type Access, parseTrace, TRACED_SYSCALLS, type TraceResult } from "./trace.js";
import { parsePreloadTrace, preloadEnv, preloadBlindSpot } from "./preload-trace.js";
import { defaultSpawnServerBinary } from "../exec/spawn-server.js";
import { Fingerprinter, recordStep, restoreStep, type StepCache, stepKey } from "./step-cache.js";
import { hashedTreeView, type TreeState, type TreeView } from "./tree-view.js";
import { LiveTreeView, nextCtimeTick, StepStartView, walkTreeShape } from "./tree-view-live.js";

export interface HostStepRunnerOptions {
  store: BlobStore;
  statCache: StatCache;
  /** Absent with --no-cache: steps run untraced and nothing is stored. */
  cache?: StepCache;
  /**
   * What run() runs steps with (runLine: each line's own); strace is looked for on its PATH, and its
   * ORION_STEP_TRACER (preload, strace or none) forces how steps are traced.
   */
  env: NodeJS.ProcessEnv;
  /** The preload tracer (native/build/liborion-trace.so); default the one beside this checkout. */
  preloadLibrary?: string;
  /** Tools a sub-make may run at once (the step runs alone: every core is its). Not used by runLine. */
  jobs: number;
  logger: Logger;
  /** Where run() writes a step's output (runLine returns it instead). */
  diagnostics(chunk: string | Uint8Array): void;
  /** Stops every step of the runner. */
  signal: AbortSignal;
}

export interface HostStep {
  /** argv to run (["/bin/sh", "-c", line] for a shell line). */
  argv: string[];
  /** Absolute working directory. */
  cwd: string;
  /** It only prints (dag-extract's printsOnly): run as it is, nothing to cache. */
  printsOnly?: boolean;
}

export interface HostStepOutcome {
  ok: boolean;
  restored: boolean;
  exitCode?: number;
  signal?: string;
  canceled: boolean;
  /**
   * What the step read and wrote (absolute paths) when its run was traced completely, or what a restore wrote: what a
   * build checks against the actions that ran beside it. Absent when nobody watched.
   */
  touched?: Touched;
}

/** What a step read and wrote (absolute paths); `before`: what files it changed held before it, where its trace said. */
export interface Touched {
  reads: string[];
  writes: string[];
  /** The directories among `reads` it listed (their names read, not just their existence). */
  lists?: string[];
  before?: ReadonlyMap<string, TreeEntry>;
}

/** A recipe line make runs (through the build's shell), run against the live file system. */
export interface HostLine {
  /** argv to run (["/bin/sh", "-c", line] for a shell line). */
  argv: string[];
  /** Absolute working directory. */
  cwd: string;
  /** The project root: what the step cache fingerprints and restores is relative to it. */
  root: string;
  /**
   * The environment the line runs with, as make gave it (MAKEFLAGS with its jobserver, so a nested make shares it).
   * Keyed without make's per-run variables and Orion's own (the build's socket path).
   */
  env: NodeJS.ProcessEnv;
  /** It only prints: run as it is, nothing to cache. */
  printsOnly?: boolean;
  /** Stops this line alone (the runner's signal stops every line). */
  signal?: AbortSignal;
}

export interface HostLineOutcome extends HostStepOutcome {
  /** The line's stdout (replayed from the cache when restored), for the shell that asked. */
  stdout: Uint8Array;
  /** Its stderr, apart (an entry stored by the client's loop replays both streams on stdout). */
  stderr: Uint8Array;
}

/** One step as the runner runs it, whichever way the tree is seen. */
interface Plan {
  argv: readonly string[];
  cwd: string;
  root: string;
  /** What it runs with. */
  env: NodeJS.ProcessEnv;
  /** What it is keyed by (stepKey leaves out the terminal's, the session's and Orion's own variables too). */
  keyEnv: NodeJS.ProcessEnv;
  printsOnly?: boolean;
  signal: AbortSignal;
  /** The tree before the step, as the cache look-up sees it. */
  now: TreeView;
  /** stdout and stderr kept apart (else interleaved, as `stdout`). */
  apart: boolean;
  /**
   * Called just before a traced step starts, `startNs` being the kernel's clock then: the tree its inputs are
   * fingerprinted against once it ran, and the files that existed (an interrupted step's new files are removed).
   */
  starting(startNs: bigint): Promise<{ before: TreeView; existed: { has(rel: string): boolean } }>;
  /** The files that existed, when the step runs untraced (undefined: runHostStep walks the tree itself). */
  existed?: { has(rel: string): boolean };
}

/** How a step's file accesses are recorded: a library preloaded into each of its processes, or strace around it. */
type Tracer = { kind: "preload"; library: string } | { kind: "strace"; strace: string };

export class HostStepRunner {
  /** The tracer: chosen once, by the first step that could be cached (null when none works here). */
  private tracer: Promise<Tracer | null> | undefined;
  /** preloadBlindSpot by program path. */
  private readonly blindSpots = new Map<string, string | undefined>();

  constructor(private readonly o: HostStepRunnerOptions) {}

  /** Chooses the tracer now (its probe runs a process) rather than on the first step that needs it. */
  prewarm(): void {
    // A rejection is the first step's to meet (the same promise).
    this.chosenTracer().catch(() => undefined);
  }

  private chosenTracer(): Promise<Tracer | null> {
    return (this.tracer ??= chooseTracer(this.o.env, this.o.preloadLibrary ?? defaultPreloadLibrary(), this.o.logger));
  }

  /** Runs a step of the client's host-step loop against `before`, the tree it hashed; the step's output goes to diagnostics. */
  async run(step: HostStep, before: TreeState): Promise<HostStepOutcome> {
    // A parent make's variables (orion run from a make) are not the step's: it gets make's defaults, and a step that
    // starts a make gets the build's -j (nothing else runs beside a host step). Not in the key: how many jobs a make
    // may run does not change what it makes.
    const keyEnv = withoutMakeVars(this.o.env);
    const env = RUNS_MAKE.test(step.argv.join(" ")) && this.o.jobs > 1 ? { ...keyEnv, MAKEFLAGS: `-j${this.o.jobs}` } : keyEnv;
    const tree = hashedTreeView(before);
    const r = await this.execute({
      ...step,
      root: before.root,
      env,
      keyEnv,
      signal: this.o.signal,
      now: tree,
      apart: false,
      starting: () => Promise.resolve({ before: tree, existed: before.files }),
      existed: before.files,
    });
    for (const bytes of [r.stdout, r.stderr]) if (bytes.length) this.o.diagnostics(bytes);
    return r.outcome;
  }

  /**
   * Runs a line make runs, against the live file system (no tree hashed up front): restored when the step cache holds
   * it, else run with the env it was given; its stdout and stderr returned, not written.
   */
  async runLine(line: HostLine): Promise<HostLineOutcome> {
    const now = new LiveTreeView(line.root, this.o.statCache);
    const r = await this.execute({
      argv: line.argv,
      cwd: line.cwd,
      root: line.root,
      env: line.env,
      // A jobserver's fds, how deep the make is: how this build was started, not what the line makes.
      keyEnv: withoutMakeVars(line.env),
      printsOnly: line.printsOnly,
      signal: line.signal ? AbortSignal.any([this.o.signal, line.signal]) : this.o.signal,
      now,
      apart: true,
      starting: async (startNs) => {
        // Walked after startNs: a change after the walk shows in a file's ctime, one before it in the walk.
        const shape = await walkTreeShape(line.root);
        return { before: new StepStartView(shape, now, startNs, this.o.statCache), existed: shape.files };
      },
    });
    return { ...r.outcome, stdout: r.stdout, stderr: r.stderr };
  }

  private async execute(p: Plan): Promise<{ outcome: HostStepOutcome; stdout: Uint8Array; stderr: Uint8Array }> {
    const log = this.o.logger;
    // One per step: steps running at once never share one, and what it noted of paths outside lasts this step only.
    const fp = new Fingerprinter(p.now);
    let key = this.o.cache && !p.printsOnly ? stepKey(p.root, path.relative(p.root, p.cwd), p.argv, p.keyEnv) : undefined;
    if (key && this.o.cache) {
      const found = await this.o.cache.find(key, fp);
      const hit = "entry" in found ? found.entry : undefined;
      if ("changed" in found && found.changed.length) log.debug({ cwd: p.cwd, argv: p.argv, changed: found.changed }, "host step runs: inputs changed since it was cached");
      let restored: "restored" | "missing" | "failed" = "missing";
      if (hit) {
        try {
          restored = await restoreStep(hit, p.root, this.o.store, this.o.statCache);
        } catch (err) {
          // Half restored: the tree is no longer the one fingerprinted, so this run is not recorded.
          log.warn({ cwd: p.cwd, err: errorMessage(err) }, "could not restore a host step; running it");
          restored = "failed";
          key = undefined;
        }
      }
      if (hit && restored === "restored") {
        log.debug({ cwd: p.cwd, argv: p.argv, outputs: hit.outputs.length, savedMs: hit.ms }, "host step restored from the step cache");
        const touched = { reads: hit.inputs.map(([, at]) => path.resolve(p.root, at)), writes: hit.outputs.map((o) => path.resolve(p.root, o.p)) };
        return { outcome: { ok: true, restored: true, canceled: false, touched }, stdout: await this.blob(hit.log), stderr: await this.blob(hit.err) };
      }
    }

    const tracer = key ? await this.tracerFor(p) : null;
    const traceFile = tracer ? path.join(tmpdir(), `orion-step-${process.pid}-${randomBytes(6).toString("hex")}.trace`) : undefined;
    try {
      let before = p.now;
      let existed = p.existed;
      let startNs: bigint | undefined;
      if (traceFile) {
        // Made before the step starts: its ctime is the kernel's clock then, which later changes are stamped after.
        writeFileSync(traceFile, "");
        startNs = await nextCtimeTick(traceFile);
        ({ before, existed } = await p.starting(startNs));
      }
      const argv = traceFile && tracer?.kind === "strace" ? [tracer.strace, ...straceArgs(traceFile), ...p.argv] : [...p.argv];
      // Not in the key (p.keyEnv): how a run is watched does not change what it makes.
      const env = traceFile && tracer?.kind === "preload" ? preloadEnv(p.env, tracer.library, traceFile, startNs) : p.env;
      const started = performance.now();
      // Its own process group, stopped whole on an interrupt, the files it created removed (see host-step.ts).
      // A prints-only step runs beside actions, whose new outputs its (older) tree does not list: nothing to remove there.
      const r = await runHostStep(argv, { cwd: p.cwd, root: p.root, env, signal: p.signal, existed, removeOnCancel: !p.printsOnly });
      const ms = performance.now() - started;
      const ok = r.exitCode === 0 && !r.cancelled;
      const stdout = p.apart ? r.stdout : r.output;
      const stderr = p.apart ? r.stderr : new Uint8Array();
      let touched: HostStepOutcome["touched"];
      // A step that failed is not stored, but what it read still says what its answer depended on (a $(shell) test).
      if (tracer && traceFile && key && this.o.cache && !r.cancelled) {
        const text = readFileSync(traceFile, "utf8");
        const trace = tracer.kind === "preload" ? parsePreloadTrace(text) : parseTrace(text, p.cwd);
        if (!trace.untraceable) touched = { ...touchedBy(trace.accesses, traceFile), ...(trace.startContent ? { before: trace.startContent } : {}) };
        if (ok) {
          fp.setTree(before);
          await this.record({ p, key, fp, traceFile, trace, log: stdout, err: p.apart ? stderr : undefined, ms });
        }
      }
      return { outcome: { ok, restored: false, exitCode: r.exitCode, signal: r.signal, canceled: r.cancelled, touched }, stdout, stderr };
    } finally {
      if (traceFile) rmSync(traceFile, { force: true });
    }
  }

  /** Stores a successful traced step, unless its trace is incomplete or it cannot be restored faithfully. */
  private async record(r: { p: Plan; key: string; fp: Fingerprinter; traceFile: string; trace: TraceResult; log: Uint8Array; err?: Uint8Array; ms: number }): Promise<void> {
    const log = this.o.logger;
    const { p, traceFile, trace } = r;
    try {
      if (trace.untraceable) {
        log.info({ cwd: p.cwd, argv: p.argv, why: trace.untraceable }, "host step not cached: its trace is incomplete");
        return;
      }
      for (const [abs, entry] of trace.startContent ?? []) r.fp.learnStart(abs, entry);
      const recorded = await recordStep(trace.accesses, r.fp, { store: this.o.store, statCache: this.o.statCache, ignore: (f) => f === traceFile }, { log: r.log, err: r.err, ms: r.ms });
      if ("uncacheable" in recorded) log.info({ cwd: p.cwd, argv: p.argv, why: recorded.uncacheable }, "host step not cached");
      else {
        this.o.cache!.put(r.key, recorded.entry);
        log.debug({ cwd: p.cwd, inputs: recorded.entry.inputs.length, outputs: recorded.entry.outputs.length, ms: Math.round(r.ms) }, "host step cached");
      }
    } catch (err) {
      log.warn({ cwd: p.cwd, err: errorMessage(err) }, "could not cache a host step");
    }
  }

  /**
   * The tracer for this step: the runner's, unless the preload would not reach the step's first program (started from
   * Node, not through the library's exec checks): then the step runs untraced.
   */
  private async tracerFor(p: Plan): Promise<Tracer | null> {
    const tracer = await this.chosenTracer();
    if (tracer?.kind !== "preload") return tracer;
    const program = findProgram(p.argv[0]!, p.cwd, p.env);
    if (!program) return tracer;
    // Read once per program: every step starts /bin/sh.
    if (!this.blindSpots.has(program)) this.blindSpots.set(program, preloadBlindSpot(program));
    const why = this.blindSpots.get(program);
    if (!why) return tracer;
    this.o.logger.info({ cwd: p.cwd, argv: p.argv, why }, "host step not cached: the preload tracer cannot see its program");
    return null;
  }

  private async blob(key: string | undefined): Promise<Uint8Array> {
    return (key && (await this.o.store.get(parseDigestKey(key)))) || new Uint8Array();
  }
}


/** `env` without a make's per-run variables (MAKEFLAGS, MAKELEVEL…). */
function withoutMakeVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of PARENT_MAKE_VARS) delete out[name];
  return out;
}

/** The paths a trace says were read (their content or existence) and written (made, changed, removed). */
function touchedBy(accesses: readonly Access[], traceFile: string): Touched {
  const reads = new Set<string>();
  const writes = new Set<string>();
  const lists = new Set<string>();
  for (const a of accesses) {
    if (a.path === traceFile) continue;
    if (a.op === "read" || a.op === "list" || a.op === "absent" || a.op === "present") reads.add(a.path);
    else writes.add(a.path);
    if (a.op === "list") lists.add(a.path);
  }
  return { reads: [...reads], writes: [...writes], lists: [...lists] };
}

/** The preload library beside this checkout: native/build/liborion-trace.so. */
function defaultPreloadLibrary(): string | undefined {
  const spawn = defaultSpawnServerBinary();
  return spawn ? path.join(path.dirname(spawn), "liborion-trace.so") : undefined;
}

/**
 * The tracer steps run under, said once in the log: ORION_STEP_TRACER's when set (none, preload or strace, nothing
 * else when that one fails here); by default the preload library when it is built and a probe shows it working, else
 * strace, else none.
 */
async function chooseTracer(env: NodeJS.ProcessEnv, library: string | undefined, log: Logger): Promise<Tracer | null> {
  let forced = env.ORION_STEP_TRACER || undefined;
  if (forced && !["preload", "strace", "none"].includes(forced)) {
    log.warn({ ORION_STEP_TRACER: forced }, "ORION_STEP_TRACER is none, preload or strace: choosing the tracer as if it were unset");
    forced = undefined;
  }
  if (forced === "none") {
    log.info("ORION_STEP_TRACER=none: host steps run every time (no whole-step caching)");
    return null;
  }
  if (forced !== "strace") {
    const why = library ? await preloadProbe(library, env) : "no checkout to find it in";
    if (!why) {
      log.debug({ library }, "host steps traced by the preload library");
      return { kind: "preload", library: library! };
    }
    if (forced === "preload") {
      log.info({ library, why }, "the preload tracer cannot trace here: host steps run every time (no whole-step caching)");
      return null;
    }
    log.debug({ library, why }, "the preload tracer cannot trace here: trying strace");
  }
  const strace = await workingStrace(env, log);
  return strace ? { kind: "strace", strace } : null;
}

/** Why the preload library cannot trace here (not built, not loaded, recording nothing), or undefined: one probe run. */
async function preloadProbe(library: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!existsSync(library)) return `${library} is not built`;
  const dir = mkdtempSync(path.join(tmpdir(), "orion-trace-probe-"));
  try {
    const input = path.join(dir, "input");
    const traceFile = path.join(dir, "trace");
    writeFileSync(input, "probe\n");
    writeFileSync(traceFile, "");
    const { execa } = await import("execa");
    const probe = await execa("/bin/sh", ["-c", 'cat "$0" > /dev/null', input], { env: preloadEnv({ PATH: env.PATH }, library, traceFile), extendEnv: false, reject: false, stdin: "ignore" });
    if (probe.exitCode !== 0 || probe.stderr) return `the probe failed (exit ${probe.exitCode}): ${String(probe.stderr).slice(0, 300)}`;
    const trace = parsePreloadTrace(readFileSync(traceFile, "utf8"));
    if (trace.untraceable) return `the probe's trace is incomplete: ${trace.untraceable}`;
    return trace.accesses.some((a) => a.op === "read" && a.path === input) ? undefined : "the probe's trace lacks the file it read";
  } catch (err) {
    return errorMessage(err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The strace flags every traced step uses (seccomp-bpf needs strace >= 5.3 and a kernel that allows it). */
function straceArgs(traceFile: string): string[] {
  return ["-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-s", "65535", "-e", `trace=${TRACED_SYSCALLS.join(",")}`, "-o", traceFile, "--"];
}

/**
 * strace, when it is installed and can trace here with our flags (an old strace, or ptrace forbidden in a container,
 * would fail every step): one probe run per build. null, said once in the log, when not.
 */
async function workingStrace(env: NodeJS.ProcessEnv, log: Logger): Promise<string | null> {
  const strace = findProgram("strace", process.cwd(), env);
  if (!strace) {
    log.info("strace is not installed: host steps run every time (no whole-step caching)");
    return null;
  }
  const { execa } = await import("execa");
  const probe = await execa(strace, [...straceArgs("/dev/null"), "/bin/true"], { reject: false, stdin: "ignore" });
  if (probe.exitCode === 0) return strace;
  log.info({ strace, stderr: String(probe.stderr).slice(0, 300) }, "strace cannot trace here: host steps run every time (no whole-step caching)");
  return null;
}
