// Reads a gcc/clang argv once into a typed call: its kind, sources, output (the implied `-o` included), depfile, search dirs, forced includes, macros and debug-info flags.
import { basename, extname } from "node:path";
import { DRIVER_OPTIONS, SOURCE_LANGUAGE, joinedOption, uncacheableOption } from "./options.js";
import { isCxxDriver } from "./tools.js";
import { withExtension } from "./outputs.js";

/** compile: `-c`/`-S`; depgen: `-M`/`-MM`; preprocess: `-E`; link: anything else with inputs or `-o`; other: nothing to do (`gcc --version`). */
export type CallKind = "compile" | "depgen" | "preprocess" | "link" | "other";

/** A word of argv that is neither an option nor an option's value: a source, an object, a library, `-` (stdin) or `@file`. */
export interface Operand {
  text: string;
  index: number;
}

export interface DriverCall {
  kind: CallKind;
  /** The driver is a C++ one (g++, c++, clang++). */
  cxx: boolean;
  /** The mode options as given: `-c`, `-S`, `-E`, `-M`/`-MM`, `-MD`/`-MMD` (also through `-Wp,`), `-fsyntax-only`. */
  modes: { compile: boolean; assemble: boolean; preprocess: boolean; depOnly: boolean; depWithCompile: boolean; syntaxOnly: boolean };
  /** Every operand, in argv order. */
  operands: Operand[];
  /** Source files (by extension, or any operand following `-x LANG`), and where each sits in argv. */
  sources: string[];
  sourceIndices: number[];
  /** Other files named as operands (objects, archives, linker scripts…), in argv order. */
  inputs: string[];
  /** `-` is an operand: input read from stdin. */
  stdin: boolean;
  /** `@file` operands, as written. */
  responseFiles: string[];
  /**
   * What the call writes: the `-o` value, or — for a compile of one named source to an object or assembly — the driver's
   * default `<source basename>.o`/`.s` in the cwd (`implied`). The one place the implied output is decided.
   */
  output?: { path: string; implied: boolean };
  /** The make-style depfile `-MD`/`-MMD` writes: `-MF` (explicit) or derived from the output; `viaPreprocessor` for `-Wp,-MD,file`. */
  depfile?: { path: string; explicit: boolean; viaPreprocessor: boolean };
  /** The last `-MF` (or `-Wp,-MD,`) file named, whether or not `-MD`/`-MMD` asks for a depfile. */
  depfileNamed?: string;
  /** Where a depgen (`-M`/`-MM`) call writes its rules: the `-MF` or `-o` file; undefined = stdout. */
  depOutput?: string;
  /** The last `-x` language, unless `-x none`. */
  explicitLanguage?: string;
  /** The `-x` language in force for the first source, or the one its extension names. */
  language?: string;
  /** `-include FILE` and `-imacros FILE`: inputs the compiler reads before the source. */
  forcedIncludes: string[];
  includeDirs: string[];
  iquoteDirs: string[];
  isystemDirs: string[];
  idirafterDirs: string[];
  /** `-L` dirs and `-l` names, in argv order; `-static` given. */
  libraryDirs: string[];
  libraries: string[];
  isStatic: boolean;
  /** `--sysroot`/`-isysroot` values, in argv order. */
  sysroots: string[];
  /** `-D`/`-U` as written (`-DNAME=1`, `-UNAME`), the option and its value joined. */
  macros: string[];
  /** Any `-g*` other than `-g0` (the last of `-g0`/`-g*` wins). */
  hasDebugInfo: boolean;
  /** The old prefixes of `-fdebug-prefix-map=`/`-ffile-prefix-map=`; "" for `-fdebug-compilation-dir` (every path). */
  debugPrefixMapFrom: string[];
  /** Options that take no value, as written (`-c`, `-O2`, `-Wall`…). */
  flags: Set<string>;
  /** What makes this call's result more than its key can name, in argv order (response files, profile data, extra outputs…). */
  problems: string[];
}

/** The state the word loop fills besides the call itself. */
interface Scan {
  call: DriverCall;
  mf?: string;
  explicitOutput?: string;
  xLang?: string;
  firstSourceLanguage?: string;
  /** The depfile was named through `-Wp,-MD,file`. */
  viaPreprocessor?: boolean;
}

function emptyCall(argv0: string): DriverCall {
  return {
    kind: "other", cxx: isCxxDriver(argv0),
    modes: { compile: false, assemble: false, preprocess: false, depOnly: false, depWithCompile: false, syntaxOnly: false },
    operands: [], sources: [], sourceIndices: [], inputs: [], stdin: false, responseFiles: [],
    forcedIncludes: [], includeDirs: [], iquoteDirs: [], isystemDirs: [], idirafterDirs: [], libraryDirs: [], libraries: [], sysroots: [],
    isStatic: false, macros: [], hasDebugInfo: false, debugPrefixMapFrom: [], flags: new Set(), problems: [],
  };
}

/** Parses a driver argv (argv[0] is the compiler); never throws, never touches the file system. */
export function parseDriver(argv: readonly string[]): DriverCall {
  const s: Scan = { call: emptyCall(argv[0] ?? "") };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-" || !a.startsWith("-")) {
      operand(s, a, i);
      continue;
    }
    if (DRIVER_OPTIONS[a]) {
      const v = argv[++i];
      if (v === undefined) {
        s.call.problems.push(`${a} without a value`);
        break;
      }
      takeValue(s, a, v);
      continue;
    }
    const joined = joinedOption(a);
    if (joined) takeValue(s, joined, a.slice(joined.length));
    else flag(s, a);
  }
  finish(s);
  return s.call;
}

function operand(s: Scan, a: string, index: number): void {
  const c = s.call;
  c.operands.push({ text: a, index });
  if (a === "-") {
    c.stdin = true;
    return;
  }
  if (a.startsWith("@")) {
    c.responseFiles.push(a);
    c.problems.push(`response file ${a}`);
    return;
  }
  const lang = s.xLang ?? SOURCE_LANGUAGE[extname(a)];
  if (!lang) {
    c.inputs.push(a);
    return;
  }
  c.sources.push(a);
  c.sourceIndices.push(index);
  s.firstSourceLanguage ??= lang;
}

function takeValue(s: Scan, opt: string, value: string): void {
  const c = s.call;
  switch (opt) {
    case "-o": s.explicitOutput = value; break;
    case "-I": c.includeDirs.push(value); break;
    case "-iquote": c.iquoteDirs.push(value); break;
    case "-isystem": c.isystemDirs.push(value); break;
    case "-idirafter": c.idirafterDirs.push(value); break;
    case "-include": case "-imacros": c.forcedIncludes.push(value); break;
    case "-L": c.libraryDirs.push(value); break;
    case "-l": c.libraries.push(value); break;
    case "-D": case "-U": c.macros.push(opt + value); break;
    case "--sysroot": case "-isysroot": c.sysroots.push(value); break;
    case "-MF": s.mf = value; break;
    case "-x": s.xLang = value === "none" ? undefined : value; break;
    default: break;
  }
}

/** An option that takes no value: a mode, a dependency option, debug info, a prefix map, or anything else (kept in `flags`). */
function flag(s: Scan, a: string): void {
  const c = s.call;
  c.flags.add(a);
  if (a === "-c") c.modes.compile = true;
  else if (a === "-S") c.modes.assemble = true;
  else if (a === "-E") c.modes.preprocess = true;
  else if (a === "-fsyntax-only") c.modes.syntaxOnly = true;
  else if (a === "-M" || a === "-MM") c.modes.depOnly = true;
  else if (a === "-MD" || a === "-MMD") c.modes.depWithCompile = true;
  else if (a === "-static") c.isStatic = true;
  else if (a.startsWith("--sysroot")) c.sysroots.push(a.slice(a.indexOf("=") + 1));
  else if (a.startsWith("-Wp,")) preprocessorFlag(s, a);
  else if (a === "-g0") c.hasDebugInfo = false;
  else if (a.startsWith("-g")) c.hasDebugInfo = true;
  if (a.startsWith("-fdebug-prefix-map=") || a.startsWith("-ffile-prefix-map=")) {
    const v = a.slice(a.indexOf("=") + 1);
    c.debugPrefixMapFrom.push(v.includes("=") ? v.slice(0, v.indexOf("=")) : v);
  } else if (a.startsWith("-fdebug-compilation-dir") || a.startsWith("-ffile-compilation-dir")) {
    c.debugPrefixMapFrom.push("");
  }
  const bad = uncacheableOption(a);
  if (bad) c.problems.push(bad);
}

/** -Wp,-MD,file (Linux kernel style makefiles) names the depfile through the preprocessor. */
function preprocessorFlag(s: Scan, a: string): void {
  const parts = a.slice(4).split(",");
  if ((parts[0] === "-MD" || parts[0] === "-MMD") && parts[1]) {
    s.call.modes.depWithCompile = true;
    s.mf = parts[1];
    s.viaPreprocessor = true;
  } else if (parts.some((p) => p.startsWith("-M"))) {
    s.call.problems.push(`${a} passes dependency options to the preprocessor`);
  }
}

/** Decides the kind, the output (implied or not), the depfile and the language once every word is read. */
function finish(s: Scan): void {
  const c = s.call;
  const m = c.modes;
  c.explicitLanguage = s.xLang;
  c.language = s.xLang ?? s.firstSourceLanguage;
  if (m.depOnly) c.kind = "depgen";
  else if (m.preprocess && (m.compile || m.assemble)) c.kind = "preprocess";
  else if (m.compile || m.assemble) c.kind = "compile";
  else if (m.preprocess) c.kind = "preprocess";
  else if (c.sources.length + c.inputs.length > 0 || s.explicitOutput !== undefined) c.kind = "link";
  if (s.explicitOutput !== undefined) c.output = { path: s.explicitOutput, implied: false };
  else if (c.kind === "compile" && !c.stdin && c.sources.length === 1) {
    c.output = { path: withExtension(basename(c.sources[0]!), m.assemble ? ".s" : ".o"), implied: true };
  }
  if (m.depWithCompile) {
    const via = s.viaPreprocessor === true;
    if (s.mf !== undefined) c.depfile = { path: s.mf, explicit: true, viaPreprocessor: via };
    else if (s.explicitOutput !== undefined) c.depfile = { path: withExtension(s.explicitOutput, ".d"), explicit: false, viaPreprocessor: via };
    else if (c.sources[0] !== undefined) c.depfile = { path: withExtension(basename(c.sources[0]), ".d"), explicit: false, viaPreprocessor: via };
  }
  if (m.depOnly) c.depOutput = s.mf ?? s.explicitOutput;
  if (s.mf !== undefined) c.depfileNamed = s.mf;
}
