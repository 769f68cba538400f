// Classifies a gcc/clang command line (compile, depgen, link, other) and pulls out what the cache keys need: sources, output, depfile, search dirs, debug-info flags.
import { basename, dirname, extname, join } from "node:path";

export type CompileKind = "compile" | "depgen" | "link" | "other";

export interface CompileArgs {
  kind: CompileKind;
  /**
   * True only for a single-source `-c`/`-S` compile with `-o` whose outputs Orion can name and cache — or, with
   * kind "depgen", a `-M`/`-MM` call over named source files (`orion cc` caches those; `orion build` does not).
   */
  cacheable: boolean;
  /** Why `cacheable` is false (always set when it is). */
  reason?: string;
  /** Source files (by extension, or any input following `-x LANG`). */
  sources: string[];
  /** Where each of `sources` sits in argv. */
  sourceIndices: number[];
  /** Other input files named in argv (objects, archives, linker scripts…), in argv order. */
  inputs: string[];
  /** The `-o` value. */
  output?: string;
  /** The make-style depfile `-MD`/`-MMD` writes: `-MF` (explicit) or derived from `-o`. */
  depfile?: { path: string; explicit: boolean };
  /** Where a depgen (`-M`/`-MM`) call writes its rules: the `-MF` or `-o` file; undefined = stdout. */
  depOutput?: string;
  /** `-include FILE` and `-imacros FILE`: inputs the compiler reads before the source. */
  forcedIncludes: string[];
  includeDirs: string[];
  iquoteDirs: string[];
  isystemDirs: string[];
  idirafterDirs: string[];
  /** Any `-g*` other than `-g0` (the last of `-g0`/`-g*` wins). */
  hasDebugInfo: boolean;
  /** A `-fdebug-prefix-map=`/`-ffile-prefix-map=`/`-fdebug-compilation-dir` is present. */
  debugPrefixMapped: boolean;
  /** The old prefixes of those maps (`OLD` of `OLD=NEW`); "" stands for "every path" (`-fdebug-compilation-dir`). */
  debugPrefixMapFrom: string[];
  /** The `-x` language in force for the source, or one inferred from its extension. */
  language?: string;
}

const SOURCE_LANGUAGE: Record<string, string> = {
  ".c": "c",
  ".cc": "c++",
  ".cpp": "c++",
  ".cxx": "c++",
  ".cp": "c++",
  ".c++": "c++",
  ".C": "c++",
  ".CPP": "c++",
  ".i": "cpp-output",
  ".ii": "c++-cpp-output",
  ".s": "assembler",
  ".S": "assembler-with-cpp",
  ".sx": "assembler-with-cpp",
  ".m": "objective-c",
  ".mm": "objective-c++",
  ".M": "objective-c++",
};

/** Options whose value is the next argv element when given alone. */
const TAKES_ARG = new Set([
  "-o", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
  "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib", "--sysroot",
  "-x", "-MF", "-MT", "-MQ", "-L", "-l", "-Xlinker", "-Xassembler", "-Xpreprocessor",
  "-Xclang", "-aux-info", "--param", "-T", "-u", "-z", "-A", "-e", "-B", "-target",
  "--target", "-arch", "-dumpbase", "-dumpdir", "-auxbase", "-specs", "-wrapper",
]);

/** The same table for other readers of gcc's argv (the node's argv policy): which options take the next word as their value. */
export const SEPARATE_VALUE_OPTIONS: ReadonlySet<string> = TAKES_ARG;

/** Joined-value forms Orion needs the value of (`-Idir`, `-ofile`…); longest prefixes first. */
const JOINED = [
  "-isystem", "-iquote", "-idirafter", "-include", "-imacros", "-MF", "-MT", "-MQ",
  "-I", "-o", "-x", "-D", "-U", "-L", "-l",
] as const;

function uncacheableOption(a: string): string | undefined {
  if (a === "--coverage" || a === "-ftest-coverage" || a === "-fprofile-arcs") return `${a} writes profiling notes`;
  if (a.startsWith("-fprofile-") || a.startsWith("-fauto-profile") || a.startsWith("-fcreate-profile")) {
    return `${a} reads or writes profile data`;
  }
  if (a === "-save-temps" || a.startsWith("-save-temps=")) return `${a} writes extra outputs`;
  if (a === "-gsplit-dwarf") return "-gsplit-dwarf writes a second output (.dwo)";
  if (a.startsWith("-fdump-") || a.startsWith("-fcallgraph-info") || a === "-fstack-usage") {
    return `${a} writes extra outputs`;
  }
  return undefined;
}

/** `out/foo.o` → `out/foo.d`, as gcc derives the `-MD` depfile name. */
function withExtension(path: string, ext: string): string {
  const base = basename(path);
  const stem = extname(base) ? base.slice(0, -extname(base).length) : base;
  const dir = dirname(path);
  return dir === "." && !path.startsWith("./") ? stem + ext : join(dir, stem + ext);
}

/** Parses argv (argv[0] is the compiler); never throws, never touches the file system. */
export interface ParseOptions {
  /**
   * A `-c`/`-S` compile without `-o` writes `<source basename>.o`/`.s` in the cwd, as gcc does; with this set that
   * name becomes `output` (orion cc caches such calls), otherwise the call is not cacheable.
   */
  implicitOutput?: boolean;
}

export function parseCompileArgs(argv: string[], options: ParseOptions = {}): CompileArgs {
  const r: CompileArgs = {
    kind: "other",
    cacheable: false,
    sources: [],
    sourceIndices: [],
    inputs: [],
    forcedIncludes: [],
    includeDirs: [],
    iquoteDirs: [],
    isystemDirs: [],
    idirafterDirs: [],
    hasDebugInfo: false,
    debugPrefixMapped: false,
    debugPrefixMapFrom: [],
  };
  const problems: string[] = [];
  let compileOnly = false; // -c
  let assembleOnly = false; // -S
  let preprocessOnly = false; // -E
  let depOnly = false; // -M / -MM
  let depWithCompile = false; // -MD / -MMD
  let mf: string | undefined;
  let xLang: string | undefined;
  let stdin = false;
  const sourceLanguages: string[] = [];

  const takeValue = (opt: string, value: string): void => {
    switch (opt) {
      case "-o": r.output = value; break;
      case "-I": r.includeDirs.push(value); break;
      case "-iquote": r.iquoteDirs.push(value); break;
      case "-isystem": r.isystemDirs.push(value); break;
      case "-idirafter": r.idirafterDirs.push(value); break;
      case "-include": case "-imacros": r.forcedIncludes.push(value); break;
      case "-MF": mf = value; break;
      case "-x": xLang = value === "none" ? undefined : value; break;
      default: break;
    }
  };

  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-") {
      stdin = true;
      continue;
    }
    if (a.startsWith("@")) {
      problems.push(`response file ${a}`);
      continue;
    }
    if (!a.startsWith("-")) {
      const lang = xLang ?? SOURCE_LANGUAGE[extname(a)];
      if (lang) {
        r.sources.push(a);
        r.sourceIndices.push(i);
        sourceLanguages.push(lang);
      } else {
        r.inputs.push(a);
      }
      continue;
    }
    if (TAKES_ARG.has(a)) {
      const v = argv[++i];
      if (v === undefined) {
        problems.push(`${a} without a value`);
        break;
      }
      takeValue(a, v);
      continue;
    }
    const joined = JOINED.find((p) => a.startsWith(p) && a.length > p.length);
    // -MD/-MMD/-MP/-MG share the -M prefix but are flags; only -MF/-MT/-MQ take values.
    if (joined) {
      takeValue(joined, a.slice(joined.length));
      continue;
    }
    if (a === "-c") compileOnly = true;
    else if (a === "-S") assembleOnly = true;
    else if (a === "-E") preprocessOnly = true;
    else if (a === "-M" || a === "-MM") depOnly = true;
    else if (a === "-MD" || a === "-MMD") depWithCompile = true;
    else if (a.startsWith("-Wp,")) {
      // -Wp,-MD,file (used by Linux kernel style makefiles) names the depfile through the preprocessor.
      const parts = a.slice(4).split(",");
      if ((parts[0] === "-MD" || parts[0] === "-MMD") && parts[1]) {
        depWithCompile = true;
        mf = parts[1];
      } else if (parts.some((p) => p.startsWith("-M"))) {
        problems.push(`${a} passes dependency options to the preprocessor`);
      }
    } else if (a === "-g0") r.hasDebugInfo = false;
    else if (a.startsWith("-g")) r.hasDebugInfo = true;
    if (a.startsWith("-fdebug-prefix-map=") || a.startsWith("-ffile-prefix-map=")) {
      r.debugPrefixMapped = true;
      const v = a.slice(a.indexOf("=") + 1);
      r.debugPrefixMapFrom.push(v.includes("=") ? v.slice(0, v.indexOf("=")) : v);
    } else if (a.startsWith("-fdebug-compilation-dir") || a.startsWith("-ffile-compilation-dir")) {
      r.debugPrefixMapped = true;
      r.debugPrefixMapFrom.push("");
    }
    const bad = uncacheableOption(a);
    if (bad) problems.push(bad);
  }

  r.language = xLang ?? sourceLanguages[0];
  if (depWithCompile) {
    if (mf !== undefined) r.depfile = { path: mf, explicit: true };
    else if (r.output !== undefined) r.depfile = { path: withExtension(r.output, ".d"), explicit: false };
    else if (r.sources[0] !== undefined) r.depfile = { path: withExtension(basename(r.sources[0]), ".d"), explicit: false };
  }

  if (depOnly) {
    // -M/-MM implies -E: the call only writes make rules naming its inputs — to -MF, else -o, else stdout.
    r.kind = "depgen";
    r.depOutput = mf ?? r.output;
    if (stdin) problems.unshift("input read from stdin");
    if (r.sources.length === 0 && !stdin) problems.push("no source file");
    if (r.inputs.length > 0) problems.push(`non-source inputs ${r.inputs.join(" ")}`);
    if (compileOnly || assembleOnly || depWithCompile) problems.push("-M/-MM mixed with -c/-S/-MD");
    r.cacheable = problems.length === 0;
    if (!r.cacheable) r.reason = problems.join("; ");
    return r;
  }
  if (compileOnly || assembleOnly || preprocessOnly) {
    r.kind = "compile";
    if (preprocessOnly) problems.unshift("-E only preprocesses");
    if (stdin) problems.unshift("source read from stdin");
    if (r.sources.length === 0 && !stdin) problems.push("no source file");
    if (r.sources.length > 1) problems.push(`${r.sources.length} sources in one compile`);
    if (r.output === undefined) {
      if (options.implicitOutput && !preprocessOnly && !stdin && r.sources.length === 1) r.output = withExtension(basename(r.sources[0]!), assembleOnly ? ".s" : ".o");
      else problems.push("no -o output");
    }
  } else if (r.sources.length + r.inputs.length > 0 || r.output !== undefined) {
    r.kind = "link";
    if (stdin) problems.unshift("input read from stdin");
  } else {
    r.kind = "other";
    problems.unshift("neither a compile nor a link");
  }
  r.cacheable = problems.length === 0;
  if (!r.cacheable) r.reason = problems.join("; ");
  return r;
}

/**
 * Files a compile never reads: objects and archives. A build writes them into its tree (jemalloc's make leaves ~65 MB
 * in Redis's), so the source context a compile runs against leaves them out — on the farm and for `orion cc` alike.
 */
export function compileNeverReads(name: string): boolean {
  return name.endsWith(".o") || name.endsWith(".a");
}
