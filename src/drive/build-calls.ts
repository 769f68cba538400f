// What a make-driven build answers on its socket: recipe lines from the `orion-sh` shell shim (rewritten so their tool
// calls come back here, run through the step cache, or handed back to /bin/sh), and the tool calls themselves from
// the native `orion-cc` client (each an action: a cache look-up, then a run here or on the farm).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { errorMessage, type Logger } from "../core/index.js";
import { type DriverSplit, parseAr, parseRanlib, splitDriverCall, toolFamily, parseDriver } from "../compile/index.js";
import type { CallHandler, CcService, CompilerCall, CompilerReply } from "../cc/index.js";
import type { ActionKind } from "../scheduler/index.js";
import { type DriveEvents, LOCAL_NODE } from "./events.js";
import { ToolCache } from "./tool-cache.js";
import { findProgram } from "../core/programs.js";
import { mapLimit } from "../core/concurrency.js";
import { ConflictWatch } from "./conflicts.js";
import type { BuildRecorder } from "./replay.js";
import type { Touched } from "../steps/host-runner.js";
import { withoutPreload } from "../steps/preload-trace.js";
import { callRecord } from "../cc/record.js";

/** argv[0] of a request from the shell shim (native/sh/orion-sh.c): the rest is the shell's own arguments. */
export const SHELL_SHIM_NAME = "orion-sh";

/** How the line planner (src/shell) answers for one recipe line. */
export type LinePlan =
  | { kind: "rewrite"; line: string; direct?: { argv: string[]; cwd: string | undefined; prelude?: { out: Buffer; err: Buffer } } }
  | { kind: "step" }
  | { kind: "fallback" };
export type LinePlanner = (line: string, o: { cwd: string; wrapper: string; readFile(abs: string): string | undefined }) => LinePlan;

/** Runs one recipe line through the whole-step cache (restored when its inputs are unchanged, else run traced). */
export interface StepLines {
  run(step: { argv: string[]; cwd: string; env: Record<string, string> }): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer; restored: boolean; touched?: Touched }>;
  /** Gets ready for the first line (opens the step cache, chooses the tracer) without waiting for it. */
  prewarm?(): void;
}

export interface BuildCallsOptions {
  cc: CcService;
  /** Links and archives (absent with --no-cache: they run as they are). */
  tools?: ToolCache;
  events: DriveEvents;
  planLine: LinePlanner;
  /** The native client a rewritten line calls its tools through (native/build/orion-cc). */
  wrapper: string;
  /** Absent: lines the planner would cache run in the shell instead (--no-cache, or no strace). */
  steps?: StepLines;
  /** The shell the shim runs lines with (and step lines run with): /bin/sh. */
  shell: string;
  /** The project root: labels name paths relative to it. */
  root?: string;
  /** Where the objects of a link's own sources go (split links compile each source on its own first). */
  objectDir: string;
  /** The build was interrupted: every tool running is killed, and what it was writing removed. */
  signal?: AbortSignal;
  /** The farm's name for calls the cache sent there. */
  farmNode?: string;
  /** Gathers what the build did, to remember it whole (replay.ts); make then runs under `tracerLibrary`. */
  recorder?: BuildRecorder;
  tracerLibrary?: string;
  logger: Logger;
}

const EMPTY = Buffer.alloc(0);
/** The compiles of one split call run this many at once (make gave the call one slot; its parts are short). */
const SPLIT_PARALLEL = Math.max(2, availableParallelism());
const HAND_BACK: CompilerReply = { exitCode: 0, stdout: EMPTY, stderr: EMPTY, runInClient: true };

export class BuildCalls implements CallHandler {
  private readonly log: Logger;
  /** Steps and tool calls that ran at once, checked for paths one wrote and the other read (see conflicts.ts). */
  readonly conflicts = new ConflictWatch();
  /** Programs found on PATH, by PATH and name (a build's compilers do not move while it runs). */
  private readonly onPath = new Map<string, string>();

  constructor(private readonly o: BuildCallsOptions) {
    this.log = o.logger.child({ module: "drive" });
  }

  handle(call: CompilerCall): Promise<CompilerReply> {
    // Calls from make's traced processes carry the tracer: what runs here is not make's to trace.
    if (this.o.tracerLibrary) call = { ...call, env: withoutPreload(call.env, this.o.tracerLibrary) };
    return call.argv[0] === SHELL_SHIM_NAME ? this.line(call) : this.tool(call);
  }

  /** One recipe line: its tool calls rewritten to come back here, or run whole through the step cache, or left to the shell. */
  private async line(call: CompilerCall): Promise<CompilerReply> {
    const args = call.argv.slice(1);
    const at = commandStringIndex(args);
    if (at === undefined) return HAND_BACK;
    const line = args[at]!;
    let plan: LinePlan;
    try {
      plan = this.o.planLine(line, { cwd: call.cwd, wrapper: this.o.wrapper, readFile: readIfFile });
    } catch (err) {
      this.log.warn({ err: errorMessage(err), line: line.slice(0, 200) }, "could not read a recipe line; the shell runs it as is");
      return HAND_BACK;
    }
    if (plan.kind === "rewrite") {
      // The line is one tool call: run it here and answer for the line, sparing the shell and the client's round trip.
      const program = plan.direct && !plan.direct.argv.includes("-") ? this.program(plan.direct.argv[0]!, plan.direct.cwd!, call.env) : undefined;
      if (plan.direct && program) {
        const reply = await this.tool({ argv: [program, ...plan.direct.argv.slice(1)], cwd: plan.direct.cwd!, env: call.env });
        // What the line's printf parts print comes first, as the shell would have printed it before the call.
        const pre = plan.direct.prelude;
        return pre && !reply.runInClient ? { ...reply, stdout: Buffer.concat([pre.out, reply.stdout]), stderr: Buffer.concat([pre.err, reply.stderr]) } : reply;
      }
      return { exitCode: 0, stdout: EMPTY, stderr: EMPTY, rewrite: plan.line };
    }
    if (plan.kind === "step" && this.o.steps) return this.step(call, args, line);
    return HAND_BACK;
  }

  /** The program a line names, as its shell would find it; a name looked up on PATH is remembered for the build. */
  private program(name: string, cwd: string, env: Record<string, string>): string | undefined {
    if (name.includes("/")) return findProgram(name, cwd, env);
    const key = `${env.PATH ?? ""}\0${name}`;
    let found = this.onPath.get(key);
    if (found === undefined && (found = findProgram(name, cwd, env)) !== undefined) this.onPath.set(key, found);
    return found;
  }

  private async step(call: CompilerCall, args: string[], line: string): Promise<CompilerReply> {
    const { events } = this.o;
    const id = events.stepId();
    const started = performance.now();
    events.hostStep(id, line, call.cwd, "started");
    try {
      const step = { argv: [this.o.shell, ...args], cwd: call.cwd, env: call.env };
      const r = await this.o.steps!.run(step);
      this.o.recorder?.step(line, call.cwd, r.touched);
      if (r.touched) {
        const { reads, writes } = r.touched;
        const rerun = async () => void (await this.o.steps!.run(step));
        this.conflicts.stepEnded({ label: line.split("\n")[0]!.slice(0, 120), start: started, end: performance.now(), reads: new Set(reads), writes: new Set(writes), rerun });
      }
      const ms = Math.round(performance.now() - started);
      events.hostStep(id, line, call.cwd, r.exitCode === 0 ? "finished" : "failed", { ms, cached: r.restored });
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      // The step cache's own failure: the line still runs, in the shell, as make would have run it.
      this.log.warn({ err: errorMessage(err), line: line.slice(0, 200) }, "step cache failed; the shell runs the line");
      this.o.recorder?.refuse("the step cache failed on a line");
      events.hostStep(id, line, call.cwd, "finished", { ms: Math.round(performance.now() - started) });
      return HAND_BACK;
    }
  }

  /** One compiler, archiver or linker call — split first when it does several jobs (`cc -c a.c b.c`, `cc a.c b.c -o app`). */
  private tool(call: CompilerCall): Promise<CompilerReply> {
    if (toolFamily(call.argv[0]) === "driver") {
      const split = splitDriverCall(call.argv, (i, source) => this.objectPath(call, i, source));
      if (split) return this.splitCall(call, split);
    }
    return this.oneTool(call);
  }

  /** Each compile an action (a few at once), then the link of their objects; the replies concatenated in order, as one call's. */
  private async splitCall(call: CompilerCall, split: DriverSplit): Promise<CompilerReply> {
    const replies = await mapLimit(split.compiles, SPLIT_PARALLEL, (argv) => this.oneTool({ ...call, argv }));
    const failed = replies.find((r) => r.exitCode !== 0);
    if (split.kind === "compile-and-link" && !failed) replies.push(await this.oneTool({ ...call, argv: split.link }));
    return {
      exitCode: failed?.exitCode ?? replies.at(-1)?.exitCode ?? 0,
      stdout: Buffer.concat(replies.map((r) => r.stdout)),
      stderr: Buffer.concat(replies.map((r) => r.stderr)),
    };
  }

  /**
   * Where a linked source's object goes: under the cache's own folder, at a path that depends only on the call (its cwd
   * and argv), so the same call next time keys its compiles and link the same and finds them cached.
   */
  private objectPath(call: CompilerCall, i: number, source: string): string {
    const dir = join(this.o.objectDir, createHash("sha256").update(`${call.cwd}\0${call.argv.join("\0")}`).digest("hex").slice(0, 24));
    mkdirSync(dir, { recursive: true });
    return join(dir, `${i}-${basename(source).replace(/\.[^.]*$/, "")}.o`);
  }

  /** One call: an action of the build. */
  private async oneTool(call: CompilerCall): Promise<CompilerReply> {
    const { events } = this.o;
    const described = describeCall(call, { objectDir: this.o.objectDir, root: this.o.root });
    const { kind, label } = described;
    const id = events.actionStarted(kind, label);
    const started = performance.now();
    if (this.o.signal?.aborted) return this.cancelled(id, described, started);
    try {
      const { reply, note, io } = await this.answer({ ...call, signal: this.o.signal });
      if (this.o.signal?.aborted) return this.cancelled(id, described, started);
      this.o.recorder?.tool(kind, label, io);
      const reads = new Set([...described.sources, ...(note.headers ?? []).map((h) => resolve(call.cwd, h))]);
      this.conflicts.toolEnded({ label, start: started, end: performance.now(), reads, writes: new Set(described.outputs) });
      const ms = performance.now() - started;
      const infra = reply.exitCode === 3 && reply.stderr.toString().startsWith("orion cc:");
      // make decides whether a tool's failure fails the build: a -MM run in $(shell) may fail harmlessly (Redis's, in a fresh
      // tree). A compile, archive or link that fails is reported failed; a depgen's exit code is only its answer.
      const failed = reply.exitCode !== 0 && kind !== "depgen";
      const state = failed ? "failed" : note.outcome === "hit" ? "cached" : "finished";
      events.actionEnded(id, kind, label, {
        state,
        ms,
        node: state === "finished" ? (typeof note.remote === "string" ? note.remote : note.remote ? (this.o.farmNode ?? "farm") : LOCAL_NODE) : undefined,
        error: state === "failed" ? `exit ${reply.exitCode}` : undefined,
        infra,
      });
      return reply;
    } catch (err) {
      events.actionEnded(id, kind, label, { state: "failed", ms: performance.now() - started, error: errorMessage(err), infra: true });
      throw err;
    }
  }

  /**
   * A call the interrupt stopped: a compiler driver's output removed (it may be half written, as make removes an
   * interrupted target's); an archive or a linker's is left, since `ar r`/`ranlib` change one in place.
   */
  private async cancelled(id: string, d: CallDescription, started: number): Promise<CompilerReply> {
    if (d.driver) for (const out of d.outputs) await rm(out, { force: true }).catch(() => undefined);
    this.o.events.actionEnded(id, d.kind, d.label, { state: "cancelled", ms: performance.now() - started });
    return { exitCode: 130, stdout: EMPTY, stderr: EMPTY };
  }

  /**
   * The reply, and — only for a build being recorded whole — what the call read and wrote when its key named its
   * inputs (a keyed hit or miss): the per-action path of other builds stats nothing more.
   */
  private async answer(call: CompilerCall): Promise<{ reply: CompilerReply; note: { outcome: string; remote?: boolean | string; headers?: string[] }; io?: ToolIo }> {
    const recording = this.o.recorder !== undefined;
    const linkOrArchive = this.o.tools && ToolCache.linkOrArchive(call);
    if (linkOrArchive) {
      const { reply, outcome, inputs, program } = await this.o.tools!.run(call, linkOrArchive);
      const io = recording && inputs ? { reads: [...inputs, ...namedFiles(call)], writes: linkOrArchive.outputs.map((p) => resolve(call.cwd, p)), program } : undefined;
      return { reply, note: { outcome }, io };
    }
    const { reply, note, cls } = await this.o.cc.handleNoted(call);
    const keyed = (note.outcome === "hit" || note.outcome === "miss") && note.headers !== undefined;
    if (!keyed || !recording) return { reply, note };
    const { reads, writes } = callRecord(call, cls, note, reply.exitCode, 0, 0);
    return { reply, note, io: { reads: [...reads, ...namedFiles(call)], writes, program: note.program } };
  }
}

/**
 * Files a call's options name besides its operands (`-Wl,--version-script,zlib.map`, `-T link.ld`, `@args.rsp`,
 * `--dynamic-list=x`): inputs too, for the whole-build record — a word counts when a file of that name exists.
 */
export function namedFiles(call: { argv: readonly string[]; cwd: string }): string[] {
  const out = new Set<string>();
  const consider = (word: string) => {
    if (word === "" || word.startsWith("-") || !/[./]/.test(word)) return;
    const abs = resolve(call.cwd, word);
    try {
      if (statSync(abs).isFile()) out.add(abs);
    } catch {
      /* not a file: an option's value of another kind */
    }
  };
  for (const word of call.argv.slice(1)) {
    if (word.startsWith("@")) consider(word.slice(1));
    else if (word.startsWith("-Wl,") || word.startsWith("-Xlinker")) for (const part of word.split(",").slice(1)) consider(part.includes("=") ? part.slice(part.indexOf("=") + 1) : part);
    else if (word.startsWith("-T") && word.length > 2) consider(word.slice(2));
    else if (word.startsWith("--") && word.includes("=")) consider(word.slice(word.indexOf("=") + 1));
    else consider(word);
  }
  return [...out];
}

interface ToolIo {
  reads: string[];
  writes: string[];
  program?: string;
}

/** Where the command string sits in a shell's arguments (`-c STRING`, `-ec STRING`, `-o pipefail -c STRING`); undefined when it runs a script. */
export function commandStringIndex(args: readonly string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-o" || a === "+o") {
      i++;
      continue;
    }
    if (!/^[-+][A-Za-z]+$/.test(a)) return undefined;
    if (a.startsWith("-") && a.includes("c")) return i + 1 < args.length ? i + 1 : undefined;
  }
  return undefined;
}

/** A tool call read once from its argv: what the build reports it as, and the files it names. */
export interface CallDescription {
  kind: ActionKind;
  /** Ninja-style: `CC src/release.o`, its path relative to the project root when it lies in it. */
  label: string;
  /** The sources it compiles (absolute). */
  sources: string[];
  /** What it writes (absolute): the object, archive or program. */
  outputs: string[];
  /** A compiler driver (not ar, ranlib or ld). */
  driver: boolean;
}

/**
 * The action kind and ninja-style label of a tool call, its paths relative to `root` (the project) when they lie in it —
 * `CC src/release.o` whichever sub-make compiled it — and the files its argv names.
 */
export function describeCall(call: CompilerCall, o: { objectDir?: string; root?: string } = {}): CallDescription {
  const argv = call.argv;
  const at = (p: string) => resolve(call.cwd, p);
  const shown = (p: string | undefined): string => {
    if (p === undefined) return "?";
    if (o.root === undefined) return p;
    const rel = relative(o.root, at(p));
    return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : at(p);
  };
  const tool = (kind: ActionKind, label: string, outputs: (string | undefined)[]): CallDescription => ({
    kind,
    label,
    sources: [],
    outputs: outputs.filter((p) => p !== undefined).map(at),
    driver: false,
  });
  switch (toolFamily(argv[0])) {
    case "ar": {
      const archive = parseAr(argv).archive?.text;
      return tool("archive", `AR ${shown(archive)}`, [archive]);
    }
    case "ranlib": {
      const archives = parseRanlib(argv).archives.map((a) => a.text);
      return tool("archive", `RANLIB ${shown(archives[0])}`, archives);
    }
    case "ld": {
      const o = argv.indexOf("-o");
      const out = o < 0 ? "a.out" : argv[o + 1];
      return tool("link", `LD ${shown(out)}`, [out]);
    }
    default:
      return describeDriverCall(argv, o.objectDir, shown, at);
  }
}

function describeDriverCall(argv: string[], objectDir: string | undefined, shown: (p: string | undefined) => string, at: (p: string) => string): CallDescription {
  const call = parseDriver(argv);
  const source = call.sources[0];
  const out = call.output?.path;
  const files = { sources: call.sources.map(at), outputs: out === undefined ? [] : [at(out)], driver: true };
  if (call.modes.depOnly) {
    const more = call.sources.length > 1 ? ` and ${call.sources.length - 1} more` : "";
    return { kind: "depgen", label: `DEP ${shown(source)}${more}`, ...files };
  }
  if (call.modes.compile || call.modes.assemble || call.modes.preprocess) {
    // A split link's object lives in Orion's cache: the source says more.
    const fromCache = out === undefined || (objectDir !== undefined && out.startsWith(objectDir + "/"));
    return { kind: "compile", label: `${call.cxx ? "CXX" : "CC"} ${shown(fromCache ? source : out)}`, ...files };
  }
  return { kind: "link", label: `LINK ${shown(out ?? "a.out")}`, ...files };
}

function readIfFile(abs: string): string | undefined {
  try {
    return readFileSync(abs, "utf8");
  } catch {
    return undefined;
  }
}
