// The cache's view of a driver call: whether Orion can key and store its result (a single-source compile, a depgen, a link), and why not.
import { parseDriver, type DriverCall } from "./driver.js";

export type CompileKind = "compile" | "depgen" | "link" | "other";

export interface CompileArgs {
  kind: CompileKind;
  /**
   * True only for a single-source `-c`/`-S` compile whose outputs Orion can name and cache — or, with kind "depgen", a
   * `-M`/`-MM` call over named source files (`orion cc` caches those; `orion build` does not).
   */
  cacheable: boolean;
  /** Why `cacheable` is false (always set when it is). */
  reason?: string;
  sources: string[];
  sourceIndices: number[];
  inputs: string[];
  /** The output: `-o`, or the driver's default name when `implicitOutput` is asked for. */
  output?: string;
  depfile?: { path: string; explicit: boolean };
  depOutput?: string;
  forcedIncludes: string[];
  includeDirs: string[];
  iquoteDirs: string[];
  isystemDirs: string[];
  idirafterDirs: string[];
  hasDebugInfo: boolean;
  /** A `-fdebug-prefix-map=`/`-ffile-prefix-map=`/`-fdebug-compilation-dir` is present. */
  debugPrefixMapped: boolean;
  debugPrefixMapFrom: string[];
  language?: string;
  /** The whole parsed call. */
  call: DriverCall;
}

export interface ParseOptions {
  /**
   * A `-c`/`-S` compile without `-o` writes `<source basename>.o`/`.s` in the cwd, as gcc does; with this set that
   * name becomes `output` (orion cc caches such calls), otherwise the call is not cacheable.
   */
  implicitOutput?: boolean;
}

/** Parses argv (argv[0] is the compiler) into the cache's view; never throws, never touches the file system. */
export function parseCompileArgs(argv: readonly string[], options: ParseOptions = {}): CompileArgs {
  const call = parseDriver(argv);
  const useOutput = call.output !== undefined && (!call.output.implied || options.implicitOutput === true);
  const r: CompileArgs = {
    kind: call.kind === "preprocess" ? "compile" : call.kind,
    cacheable: false,
    sources: call.sources,
    sourceIndices: call.sourceIndices,
    inputs: call.inputs,
    ...(useOutput ? { output: call.output!.path } : {}),
    ...(call.depfile ? { depfile: { path: call.depfile.path, explicit: call.depfile.explicit } } : {}),
    ...(call.kind === "depgen" ? { depOutput: call.depOutput } : {}),
    forcedIncludes: call.forcedIncludes,
    includeDirs: call.includeDirs,
    iquoteDirs: call.iquoteDirs,
    isystemDirs: call.isystemDirs,
    idirafterDirs: call.idirafterDirs,
    hasDebugInfo: call.hasDebugInfo,
    debugPrefixMapped: call.debugPrefixMapFrom.length > 0,
    debugPrefixMapFrom: call.debugPrefixMapFrom,
    ...(call.language !== undefined ? { language: call.language } : {}),
    call,
  };
  const problems = uncacheableReasons(call, useOutput);
  r.cacheable = problems.length === 0;
  if (!r.cacheable) r.reason = problems.join("; ");
  return r;
}

/** Why the call's result cannot be keyed and stored, by kind, after the reasons its words gave; empty when it can. */
export function uncacheableReasons(call: DriverCall, hasOutput = call.output !== undefined): string[] {
  const problems = [...call.problems];
  const m = call.modes;
  if (call.kind === "depgen") {
    if (call.stdin) problems.unshift("input read from stdin");
    if (call.sources.length === 0 && !call.stdin) problems.push("no source file");
    if (call.inputs.length > 0) problems.push(`non-source inputs ${call.inputs.join(" ")}`);
    if (m.compile || m.assemble || m.depWithCompile) problems.push("-M/-MM mixed with -c/-S/-MD");
  } else if (call.kind === "compile" || call.kind === "preprocess") {
    if (m.preprocess) problems.unshift("-E only preprocesses");
    if (call.stdin) problems.unshift("source read from stdin");
    if (call.sources.length === 0 && !call.stdin) problems.push("no source file");
    if (call.sources.length > 1) problems.push(`${call.sources.length} sources in one compile`);
    if (!hasOutput) problems.push("no -o output");
  } else if (call.kind === "link") {
    if (call.stdin) problems.unshift("input read from stdin");
  } else {
    problems.unshift("neither a compile nor a link");
  }
  return problems;
}
