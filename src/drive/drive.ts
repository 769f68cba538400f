// `orion build` with make driving: make runs the build as it always would — its own graph, sub-makes, configure-written
// and CMake-generated Makefiles included — with `-j` set to the build's slots and SHELL pointed at Orion's shell shim.
// The shim hands every recipe line to this process over a per-build socket: tool calls come back as actions (cache
// look-up, then a run here or on the farm), expensive lines go through the step cache, the rest run in /bin/sh.
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { errorMessage, ExitCode, type Logger } from "../core/index.js";
import type { BuildEvent, Summary } from "../scheduler/index.js";
import type { CcService } from "../cc/index.js";
import { BuildCalls, type LinePlanner, type StepLines } from "./build-calls.js";
import { DriveEvents } from "./events.js";
import type { ToolCache } from "./tool-cache.js";
import { runMake } from "./make-run.js";
import { PARENT_MAKE_VARS } from "../../dag-extract/make.js";
import { DriveHistory } from "./history.js";
import type { ConflictWatch } from "./conflicts.js";
import { BuildRecorder, forgetBuild, holdsOutputs, replayBuild, type ReplayStores, type Shape } from "./replay.js";
import type { ProgramDigests } from "../cache/program-digests.js";
import { MAKE_DEBUG_FLAG, makeArgsSpeak, preloadBlindSpot, preloadEnv } from "../steps/preload-trace.js";
import { findProgram } from "../core/programs.js";

export interface FarmAccess {
  head: string;
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface DriveOptions {
  /** The project directory make runs in. */
  dir: string;
  /** Targets and VAR=value words for make (after `--`). */
  makeArgs: string[];
  /** make's -j. */
  jobs: number;
  cc: CcService;
  tools?: ToolCache;
  planLine: LinePlanner;
  steps?: StepLines;
  /** Compile misses go to this farm (the call's ORION_HEAD), else run here. */
  farm?: FarmAccess;
  /** Where split links put their sources' objects (under the cache dir). */
  objectDir: string;
  /** native/build, where orion-sh and orion-cc live. */
  nativeDir: string;
  logger: Logger;
  onEvent(e: BuildEvent): void;
  diagnostics(chunk: string | Uint8Array): void;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  make?: string;
  /** Where the counts of each tree's last build are kept, for the next build-start's prediction. */
  historyFile?: string;
  /**
   * Remember a build that started from a tree without its outputs, and restore it whole when the same tree comes
   * again (replay.ts): the cache dir it is kept in, its stores, the program digests.
   */
  whole?: { cacheDir: string; stores(): ReplayStores; programs: ProgramDigests };
}

export interface DriveOutcome {
  summary: Summary;
  exitCode: number;
}

const SHELL = "/bin/sh";

export async function runDriven(o: DriveOptions): Promise<DriveOutcome> {
  const log = o.logger.child({ module: "drive" });
  const events = new DriveEvents(o.onEvent);
  const sock = buildSocketPath();
  const wrapper = join(o.nativeDir, "orion-cc");
  const shim = join(o.nativeDir, "orion-sh");
  for (const p of [wrapper, shim]) if (!existsSync(p)) throw new Error(`${p} is missing: run \`make build\``);
  const history = o.historyFile ? new DriveHistory(o.historyFile) : undefined;
  const root = projectRoot(o.dir);
  const userEnv = o.env ?? process.env;
  const makeProgram = o.make ?? "make";
  const place = o.whole && { root, dir: o.dir, makeArgs: o.makeArgs, env: userEnv, cacheDir: o.whole.cacheDir };
  const whole = place && !holdsOutputs(place) ? wholeBuildTracer(o.nativeDir, makeProgram, o.dir, userEnv) : undefined;
  const ignore = [dirname(sock), ...(o.whole ? [o.whole.cacheDir] : []), o.objectDir];
  const predicted = history?.predict(o.dir);
  events.start(predicted ?? { actions: 0, hostSteps: 0 });
  let walked: { shape: Shape; mtimes: Map<string, bigint> } | undefined;
  let halfRestored = false;
  if (whole && place && o.whole) {
    try {
      const replay = await replayBuild(place, { ...o.whole, events, diagnostics: o.diagnostics, logger: o.logger, ignore });
      if (replay.restored) {
        rmSync(dirname(sock), { recursive: true, force: true });
        const summary = events.finish(true);
        history?.remember(o.dir, summary);
        return { summary, exitCode: ExitCode.OK };
      }
      if (replay.shape && replay.mtimes) walked = { shape: replay.shape, mtimes: replay.mtimes };
    } catch (err) {
      // Half restored: make builds what is missing, as it would after an interrupted build; that record is forgotten.
      log.warn({ err: errorMessage(err) }, "restoring the whole build failed; make runs");
      forgetBuild(place);
      halfRestored = true;
    }
  }
  const traceFile = whole && !halfRestored ? join(dirname(sock), "make.trace") : undefined;
  let traceSince: bigint | undefined;
  if (traceFile) {
    writeFileSync(traceFile, "");
    traceSince = lstatSync(traceFile, { bigint: true }).ctimeNs;
  }
  let recorder = place && traceFile ? new BuildRecorder(place, traceFile, ignore, walked) : undefined;
  // Nothing to gather for (a project too large to walk): make runs untraced.
  if (recorder?.refusedWhy) recorder = undefined;
  const handler = new BuildCalls({ cc: o.cc, tools: o.tools, objectDir: o.objectDir, root: o.dir, signal: o.signal, events, planLine: o.planLine, wrapper, steps: o.steps, shell: SHELL, farmNode: o.farm?.head, logger: o.logger, recorder, tracerLibrary: recorder ? whole : undefined });
  const { startAgent } = await import("../agent/server.js");
  const agent = await startAgent({ socketPath: sock, handler, idleMs: 2 ** 30, logger: o.logger });
  let exit: { exitCode?: number; interrupted: boolean };
  const baseEnv = makeEnv(userEnv, sock, o.farm, root);
  const output = (chunk: Uint8Array) => {
    recorder?.out(chunk);
    o.diagnostics(chunk);
  };
  // Recorded whole: make also says which files it compared (its debug output, read by the tracer, never shown), so a
  // fresh tree is held to those comparisons, not to the order of every file make looked at.
  const makeDebug = !makeArgsSpeak(o.makeArgs);
  // Steps are likely (this tree's last build ran some, or it has none on record): the step cache opens and the tracer
  // is probed while make starts, not when make waits on the first step (often a $(shell …) as it reads the Makefile).
  const started = o.steps?.prewarm && (!predicted || predicted.hostSteps > 0) ? () => o.steps!.prewarm!() : undefined;
  const make = (traced: boolean) => {
    const tracing = traced && whole && recorder && traceFile;
    return runMake({
      make: makeProgram,
      dir: o.dir,
      args: [`-j${o.jobs}`, `SHELL=${shim}`, ...(tracing && makeDebug ? [MAKE_DEBUG_FLAG] : []), ...o.makeArgs],
      env: tracing ? preloadEnv(baseEnv, whole, traceFile, traceSince, makeDebug) : baseEnv,
      output,
      signal: o.signal,
      started,
    });
  };
  try {
    exit = await make(true);
    // A race make's graph did not order (a missing prerequisite): put right what it left, then make redoes the rest.
    if (exit.exitCode === 0 && !exit.interrupted && handler.conflicts.found.length > 0) {
      recorder?.refuse("a race between a step and a tool call was repaired");
      await repairConflicts(handler.conflicts, o.diagnostics, log);
      exit = await make(false);
    }
    if (recorder && o.whole && exit.exitCode === 0 && !exit.interrupted && events.infraFailures === 0) await recorder.finish({ stores: o.whole.stores, programs: o.whole.programs, logger: o.logger });
  } finally {
    await agent.close();
    rmSync(dirname(sock), { recursive: true, force: true });
  }
  log.debug({ exit }, "make finished");
  const summary = events.finish();
  history?.remember(o.dir, summary);
  const exitCode = exit.interrupted
    ? ExitCode.INTERRUPTED
    : events.infraFailures > 0
      ? ExitCode.INFRASTRUCTURE
      : exit.exitCode === 0
        ? ExitCode.OK
        : ExitCode.BUILD_FAILED;
  return { summary, exitCode };
}

/**
 * Says what raced, removes the outputs of tool calls that read a file a step was writing (make then rebuilds them, and
 * what depends on them), and runs again each step that read a file a tool call was writing.
 */
async function repairConflicts(watch: ConflictWatch, diagnostics: (chunk: string) => void, log: Logger): Promise<void> {
  for (const c of watch.found) {
    const [writer, reader] = c.writer === "step" ? [`\`${c.step.label}\``, c.tool.label] : [c.tool.label, `\`${c.step.label}\``];
    diagnostics(`orion: ${reader} ran while ${writer} wrote ${c.path}, and make did not order them (a missing prerequisite?): redoing ${c.writer === "step" ? c.tool.label : "that step"}, then make runs again\n`);
  }
  const { tools, steps } = watch.repairs();
  log.info({ tools: tools.map((t) => t.label), steps: steps.map((s) => s.label) }, "conflicts between steps and tool calls; repairing");
  for (const t of tools) for (const out of t.writes) rmSync(out, { force: true });
  for (const s of steps) await s.rerun();
}

function makeEnv(base: NodeJS.ProcessEnv, sock: string, farm: FarmAccess | undefined, root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ORION_AGENT_SOCKET: sock, ORION_REAL_SHELL: SHELL };
  // A parent make's per-run variables (orion run from a recipe): this make starts its own run.
  for (const name of PARENT_MAKE_VARS) delete env[name];
  delete env.ORION_NO_AGENT;
  delete env.ORION_HEAD;
  if (farm) {
    env.ORION_HEAD = farm.head;
    // What a farm compile may read: the project, which for a CMake build dir includes its source dir.
    env.ORION_PROJECT_ROOT ??= root;
    if (farm.token) env.ORION_TOKEN = farm.token;
    if (farm.tlsCa) env.ORION_TLS_CA = farm.tlsCa;
    if (farm.tlsCert) env.ORION_TLS_CERT = farm.tlsCert;
    if (farm.tlsKey) env.ORION_TLS_KEY = farm.tlsKey;
  }
  return env;
}

/**
 * The project a build dir belongs to: the dir itself, or for a CMake build dir the deepest folder holding both it and
 * the source dir its CMakeCache.txt names (CMAKE_HOME_DIRECTORY), since its compiles read the sources there.
 */
export function projectRoot(dir: string): string {
  let home: string | undefined;
  try {
    home = /^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$/m.exec(readFileSync(join(dir, "CMakeCache.txt"), "utf8"))?.[1]?.trim();
  } catch {
    return dir;
  }
  if (!home || !isAbsolute(home)) return dir;
  let root = dir;
  while (root !== "/" && home !== root && !home.startsWith(root + "/")) root = dirname(root);
  return root;
}

/**
 * The preload library make runs under so the build can be remembered whole, or undefined: not wanted
 * (ORION_WHOLE_BUILD=0, or steps not traced by the preload), not built, or blind to make (a static make).
 */
function wholeBuildTracer(nativeDir: string, make: string, dir: string, env: NodeJS.ProcessEnv): string | undefined {
  // ORION_RECORD wants a line for every compiler call: a restore would make none.
  if (env.ORION_WHOLE_BUILD === "0" || env.ORION_RECORD || (env.ORION_STEP_TRACER && env.ORION_STEP_TRACER !== "preload")) return undefined;
  const library = join(nativeDir, "liborion-trace.so");
  if (!existsSync(library)) return undefined;
  const program = findProgram(make, dir, env);
  return program && !preloadBlindSpot(program) ? library : undefined;
}

/** A fresh private folder for this build's socket, short enough for sockaddr_un. */
function buildSocketPath(): string {
  const dir = join(tmpdir(), `orion-${process.getuid?.() ?? 0}`, `b-${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, "s");
}
