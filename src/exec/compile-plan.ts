// Rewrites a gcc/clang `-c` command so it runs in a shared, read-only input context while writing only to a private folder.
import { posix } from "node:path";
import { ExitCode, OrionError, Status } from "../core/index.js";
import { sandboxViolation } from "./input-root.js";
import { DRIVER_OPTIONS, PREFIX_MAP_OPTIONS, defaultDepfilePath, joinedOption, parseDriver, withExplicitOutput, type DriverCall } from "../compile/index.js";

export interface CompilePlanInput {
  argv: readonly string[];
  /** The client's absolute project root: where the action believes the input root lives. */
  projectRoot: string;
  /** Relative to the input root; "" for the root itself. */
  workingDirectory: string;
  /** Absolute path of the materialized shared context (the input root). */
  ctxRoot: string;
  /** Absolute path of the action's private folder; it stands for the folder `privateBase` of the input root. */
  privateDir: string;
  /**
   * The folder (relative to the input root) the private folder stands for: the working directory or one of its
   * ancestors, so that outputs in a sibling of the cwd (`-o ../lib/a.o`) have a place. Default: the working directory.
   */
  privateBase?: string;
}

export interface CompilePlan {
  argv: string[];
  /** Absolute path of the depfile gcc will write. */
  depfilePath: string;
  /** True when the user asked for the depfile (-MD/-MMD), so the rewritten text must replace it as an output. */
  depfileRequested: boolean;
  /** Folders inside `privateDir` that must exist before gcc runs (the parents of -o and -MF, and the cwd's stand-in). */
  privateParents: string[];
  /** Sandbox prefix → project prefix, longest first; applied to the depfile and to diagnostics. */
  replacements: [from: string, to: string][];
}

/** Whether `argv` is a compile the shared-context path can run: `-c`, an explicit `-o`, no preprocess-only mode. */
export function isSharedContextCompile(argv: readonly string[]): boolean {
  return isPlainObjectCompile(parseDriver(argv), false);
}

/** `-c` to an object (no `-S`, `-E`, `-M`, `-fsyntax-only`), with `-o` given or (when `implied` is allowed) implied. */
function isPlainObjectCompile(call: DriverCall, implied: boolean): boolean {
  const m = call.modes;
  if (call.kind !== "compile" || !m.compile || m.assemble || m.syntaxOnly || call.output === undefined) return false;
  return implied || !call.output.implied;
}

/**
 * A `-c` compile of one source without `-o` (hiredis, linenoise: `cc ... -c net.c`) writes `<source basename>.o` in
 * its cwd, as gcc does: the same call with that `-o` spelled out, so it can take the shared-context path (objects
 * free of sandbox paths, headers learned from the depfile); undefined when argv is not such a call.
 */
export function withImplicitObject(argv: readonly string[]): string[] | undefined {
  const call = parseDriver(argv);
  if (!call.output?.implied || !isPlainObjectCompile(call, true)) return undefined;
  return withExplicitOutput(argv, call);
}

/** Drops a leading "./" chain and trailing slashes; "" for the root. Paths are relative and already validated. */
export function normalizeRelative(p: string): string {
  const n = posix.normalize(p === "" ? "." : p).replace(/\/+$/, "");
  return n === "." ? "" : n;
}

/** What the rewrite of one argv learns besides the new argv: the private outputs, their parents, the project prefix of -o. */
class PlanState {
  readonly out: string[] = [];
  readonly parents: string[];
  /** Whether the -o text was absolute (its project prefix maps back) or relative to the cwd. */
  outAbsolute = false;
  objectPath?: string;
  userDepfile?: string;
  wantsDeps = false;
  private readonly wd: string;
  /** The folder the private folder stands for, relative to the input root ("" for the root). */
  readonly base: string;
  /** The working directory relative to `base` ("" when the private folder stands for the cwd itself). */
  readonly wdFromBase: string;
  /** `privateDir` standing for the cwd: relative output texts are resolved from here. */
  readonly stand: string;

  constructor(private readonly input: CompilePlanInput) {
    this.wd = normalizeRelative(input.workingDirectory);
    this.base = normalizeRelative(input.privateBase ?? input.workingDirectory);
    if (this.base === this.wd) this.wdFromBase = "";
    else if (this.base === "") this.wdFromBase = this.wd;
    else if (this.wd.startsWith(this.base + "/")) this.wdFromBase = this.wd.slice(this.base.length + 1);
    else throw sandboxViolation(`private folder base ${this.base} is not the working directory ${this.wd || "."} nor above it`);
    this.stand = this.wdFromBase ? `${input.privateDir}/${this.wdFromBase}` : input.privateDir;
    this.parents = [input.privateDir, this.stand];
  }

  /** The project folder the private folder stands for, with a trailing slash. */
  get baseAbs(): string {
    return this.base ? `${this.input.projectRoot}/${this.base}/` : `${this.input.projectRoot}/`;
  }

  /** A project path as the sandbox sees it: under the shared context. */
  toCtx(p: string): string {
    const { projectRoot, ctxRoot } = this.input;
    return p === projectRoot || p.startsWith(projectRoot + "/") ? ctxRoot + p.slice(projectRoot.length) : p;
  }

  /**
   * Maps an output path (-o, -MF) into the private folder, keeping its text so gcc's own depfile target can be
   * recovered: a relative path is resolved from the cwd's stand-in, so `../lib/a.o` from `programs` stays that text.
   */
  toPrivate(p: string, what: string, isObject: boolean): string {
    let full: string;
    let rel: string;
    if (posix.isAbsolute(p)) {
      const baseAbs = this.baseAbs;
      if (!p.startsWith(baseAbs)) throw sandboxViolation(`${what} ${p} is outside the folder ${baseAbs} of its private outputs`);
      rel = posix.normalize(p.slice(baseAbs.length));
      full = `${this.input.privateDir}/${p.slice(baseAbs.length)}`;
      if (isObject) this.outAbsolute = true;
    } else {
      const fromBase = posix.normalize(posix.join(this.wdFromBase || ".", p));
      rel = fromBase;
      full = `${this.stand}/${p}`;
      if (isObject) this.outAbsolute = false;
    }
    if (rel === ".." || rel.startsWith("../") || rel === ".") {
      throw sandboxViolation(`${what} ${p} is outside the folder ${this.base || "."} of its private outputs`);
    }
    this.parents.push(posix.dirname(posix.normalize(full)));
    return full;
  }

  /** Private prefix → project prefix, longest first: the cwd's stand-in, then the private folder itself. */
  replacements(): [string, string][] {
    const { privateDir } = this.input;
    const up = this.wdFromBase ? this.wdFromBase.split("/").map(() => "../").join("") : "";
    const standTo = this.outAbsolute ? this.baseAbs + (this.wdFromBase ? `${this.wdFromBase}/` : "") : "";
    const baseTo = this.outAbsolute ? this.baseAbs : up;
    return this.wdFromBase ? [[`${this.stand}/`, standTo], [`${privateDir}/`, baseTo]] : [[`${privateDir}/`, baseTo]];
  }

  /** An output option's value (`-o`, `-MF`), separate (`joined` undefined) or glued to the option. */
  output(opt: "-o" | "-MF", value: string, joined: boolean): void {
    const mapped = this.toPrivate(value, opt === "-o" ? "output" : "depfile", opt === "-o");
    if (opt === "-o") this.objectPath = mapped;
    else this.userDepfile = mapped;
    this.out.push(...(joined ? [opt + mapped] : [opt, mapped]));
  }

  /** Rewrites argument `i` (and its value when separate); returns how many words it took. */
  word(argv: readonly string[], i: number): number {
    const a = argv[i]!;
    const next = argv[i + 1];
    const spec = DRIVER_OPTIONS[a];
    if (spec && next !== undefined) {
      if (a === "-o" || a === "-MF") this.output(a, next, false);
      // A path read goes to the context; any other value (macros, depfile targets, languages) stays as written.
      else this.out.push(a, spec.value === "read" ? this.toCtx(next) : next);
      return 2;
    }
    if (a === "-MD" || a === "-MMD") this.wantsDeps = true;
    const joined = joinedOption(a);
    if (joined === "-o" || joined === "-MF") this.output(joined, a.slice(joined.length), true);
    else if (joined && DRIVER_OPTIONS[joined]!.value === "read") this.out.push(joined + this.toCtx(a.slice(joined.length)));
    else if (a.startsWith("--sysroot=")) this.out.push(`--sysroot=${this.toCtx(a.slice("--sysroot=".length))}`);
    else if (PREFIX_MAP_OPTIONS.some((o) => a.startsWith(o))) this.out.push(this.prefixMap(a));
    else this.out.push(joined ? a : this.toCtx(a));
    return 1;
  }

  /** The user's OLD named the project; in the sandbox the same files live under the context. */
  private prefixMap(a: string): string {
    const eq = a.indexOf("=");
    const value = a.slice(eq + 1);
    const sep = value.indexOf("="); // gcc splits at the first "=": OLD cannot contain one, NEW can
    return sep > 0 ? `${a.slice(0, eq + 1)}${this.toCtx(value.slice(0, sep))}${value.slice(sep)}` : a;
  }
}

export function planSharedCompile(input: CompilePlanInput): CompilePlan {
  const { projectRoot, ctxRoot, privateDir } = input;
  const st = new PlanState(input);
  st.out.push(input.argv[0]!);
  // First, so that the user's own prefix maps (later on the command line) take precedence: gcc tries the last one first.
  st.out.push(`-ffile-prefix-map=${ctxRoot}=${projectRoot}`);
  for (let i = 1; i < input.argv.length; ) i += st.word(input.argv, i);
  if (st.objectPath === undefined) {
    throw new OrionError("compile plan needs an explicit -o", { exitCode: ExitCode.BUILD_FAILED, code: Status.INVALID_ARGUMENT });
  }
  let depfilePath: string;
  if (!st.wantsDeps) {
    // Orion learns the headers from gcc itself; this file is not an output the user asked for.
    depfilePath = `${privateDir}/.orion-deps.d`;
    st.out.push("-MD", "-MF", depfilePath);
  } else {
    depfilePath = st.userDepfile ?? defaultDepfilePath(st.objectPath);
  }
  return {
    argv: st.out,
    depfilePath,
    depfileRequested: st.wantsDeps,
    privateParents: [...new Set(st.parents)],
    replacements: [...st.replacements(), [ctxRoot, projectRoot]],
  };
}

/**
 * Whether planSharedCompile moves the path at `slot` itself (read by the same option table as its rewrite): a whole word
 * that is an operand, an output's value or a read path's value, or a joined read path, `-o`/`-MF` or `--sysroot=`. The
 * executor moves the other project paths (-Wp,-MD,/abs, -Xlinker values…) into the context before the plan runs, and
 * must never move one twice.
 */
export function planMovesPath(argv: readonly string[], slot: { index: number; start: number; end: number; option: string }): boolean {
  const word = argv[slot.index]!;
  if (slot.start === 0 && slot.end === word.length) {
    const prev = argv[slot.index - 1];
    const spec = prev !== undefined && slot.index > 1 ? DRIVER_OPTIONS[prev] : undefined;
    return spec === undefined || spec.value === "read" || prev === "-o" || prev === "-MF";
  }
  if (slot.option === "--sysroot") return word.startsWith("--sysroot=");
  const joined = joinedOption(word);
  return joined === slot.option && (joined === "-o" || joined === "-MF" || DRIVER_OPTIONS[joined]!.value === "read");
}

/** gcc's `%{o*:%.d%*}`: the -o path with its file-name suffix replaced by ".d". */
export { defaultDepfilePath };
