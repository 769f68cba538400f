// Recognises what one build command is (compile, archive, link, dependency generation or anything else) from its argv, and which files it reads and writes.

import path from "node:path";
import type { CommandKind } from "./graph.js";

export interface Classified {
  kind: CommandKind;
  /** Files the command reads, as written in argv (relative to the command's cwd). */
  inputs: string[];
  /** Files the command writes, as written in argv (relative to the command's cwd). */
  outputs: string[];
  /** For compilers: true when the driver is a C++ one (g++, c++, clang++), for labels. */
  cxx?: boolean;
  /** A compile without `-o`: its object (outputs[0]) is the driver's default name in the cwd. */
  impliedOutput?: boolean;
}

/**
 * The argv with a compile's implied object named (`cc -c net.c` → `cc -c net.c -o net.o`, what the
 * driver does anyway): a sandboxed compile writes into a private folder and must say where.
 */
export function withExplicitOutput(argv: readonly string[], c: Classified): string[] {
  return c.kind === "compile" && c.impliedOutput ? [...argv, "-o", c.outputs[0]!] : [...argv];
}

/** Decides whether a path (as written in argv, relative to the command's cwd) names an existing file. */
export type ExistsFn = (relPath: string) => boolean;

const COMPILER = /(^|-)(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(-[0-9.]+)?$/;
const CXX_COMPILER = /(g\+\+|c\+\+|clang\+\+)(-[0-9.]+)?$/;
const ARCHIVER = /(^|-)ar$/;
const RANLIB = /(^|-)ranlib$/;

const SOURCE_EXT = new Set([".c", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".C", ".CPP", ".m", ".mm", ".M", ".s", ".S", ".sx", ".i", ".ii"]);
const LINK_INPUT = /\.(o|a|so|lo|obj)$|\.so(\.[0-9]+)+$/;

/**
 * Driver options whose value is the next word (when not glued on), so that value is
 * never mistaken for a source or link input.
 */
const TAKES_VALUE = new Set([
  "-o", "-I", "-D", "-U", "-L", "-l", "-x", "-include", "-imacros", "-isystem", "-iquote",
  "-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib",
  "-MF", "-MT", "-MQ", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-aux-info",
  "--param", "-T", "-u", "-z", "-e", "-A", "-arch", "-target", "--sysroot", "-specs",
]);

export function isCompilerDriver(argv0: string): boolean {
  return COMPILER.test(path.basename(argv0));
}

export function classify(argv: readonly string[], exists: ExistsFn = () => false): Classified {
  const argv0 = argv[0];
  if (argv0 === undefined) return other();
  const base = path.basename(argv0);
  if (COMPILER.test(base)) return classifyCompiler(argv, CXX_COMPILER.test(base), exists);
  if (ARCHIVER.test(base)) return classifyAr(argv);
  if (RANLIB.test(base)) return classifyRanlib(argv);
  return other();
}

function other(): Classified {
  return { kind: "other", inputs: [], outputs: [] };
}

interface DriverArgs {
  flags: Set<string>;
  output?: string;
  depfile?: string;
  /** The last `-x` language, unless it was `-x none`. */
  language?: string;
  includes: string[];
  /** Words that are not options nor option values (sources, objects, libraries). */
  operands: string[];
}

function parseDriverArgs(argv: readonly string[]): DriverArgs {
  const parsed: DriverArgs = { flags: new Set(), includes: [], operands: [] };
  for (let i = 1; i < argv.length; i++) {
    const w = argv[i]!;
    if (!w.startsWith("-") || w === "-") {
      parsed.operands.push(w);
      continue;
    }
    if (TAKES_VALUE.has(w)) {
      const value = argv[++i];
      if (value === undefined) break;
      if (w === "-o") parsed.output = value;
      else if (w === "-MF") parsed.depfile = value;
      else if (w === "-x") parsed.language = value === "none" ? undefined : value;
      else if (w === "-include" || w === "-imacros") parsed.includes.push(value);
      continue;
    }
    if (w.startsWith("-o") && w.length > 2) parsed.output = w.slice(2);
    else if (w.startsWith("-MF") && w.length > 3) parsed.depfile = w.slice(3);
    else if (w.startsWith("-x") && w.length > 2) parsed.language = w === "-xnone" ? undefined : w.slice(2);
    parsed.flags.add(w);
  }
  return parsed;
}

/**
 * A compile is `-c` with exactly one source. Without `-o` the driver writes
 * `basename(source).o` in its cwd, which compile databases (Redis's hiredis) rely on.
 * A link that also names a source compiles it too, reading headers no argv lists,
 * so it is left "other" rather than risk a cache key that misses them.
 */
function classifyCompiler(argv: readonly string[], cxx: boolean, exists: ExistsFn): Classified {
  const a = parseDriverArgs(argv);
  const has = (f: string): boolean => a.flags.has(f);
  // After `-x LANG` every operand is a source whatever its extension.
  const sources = a.operands.filter((w) => a.language !== undefined || SOURCE_EXT.has(path.extname(w)));

  if (has("-M") || has("-MM")) {
    // -M implies -E: whatever else is given, the command only writes dependency rules.
    return { kind: "depgen", inputs: sources, outputs: a.depfile ? [a.depfile] : a.output ? [a.output] : [], cxx };
  }
  if (has("-E") || has("-S") || a.flags.has("-fsyntax-only")) return other();

  if (has("-c")) {
    if (sources.length !== 1) return other();
    const source = sources[0]!;
    const object = a.output ?? replaceExt(path.basename(source), ".o");
    const outputs = [object];
    if (has("-MD") || has("-MMD")) outputs.push(a.depfile ?? replaceExt(a.output ?? path.basename(source), ".d"));
    return { kind: "compile", inputs: [source, ...a.includes], outputs, cxx, ...(a.output === undefined ? { impliedOutput: true } : {}) };
  }

  if (a.output === undefined || sources.length > 0) return other();
  const inputs = a.operands.filter((w) => LINK_INPUT.test(w) || exists(w));
  return { kind: "link", inputs, outputs: [a.output], cxx };
}

function replaceExt(file: string, ext: string): string {
  const current = path.extname(file);
  return (current ? file.slice(0, -current.length) : file) + ext;
}

/**
 * `ar` with an r (replace) or q (append) operation builds an archive from members.
 * Both update an archive that already exists rather than start afresh, so the
 * output is a pure function of the inputs only when the archive is absent, as in
 * a sandbox or a clean build.
 */
function classifyAr(argv: readonly string[]): Classified {
  let i = 1;
  // GNU ar's long options come before the operation; --plugin and --target take a value.
  while (i < argv.length && argv[i]!.startsWith("--")) {
    const opt = argv[i]!;
    i += (opt === "--plugin" || opt === "--target") ? 2 : 1;
  }
  const opWord = argv[i];
  if (opWord === undefined) return other();
  const op = opWord.replace(/^-/, "");
  if (!/^[dmpqrstxcfouvSTDUlPNabiVO]+$/.test(op)) return other();
  const rest = argv.slice(i + 1);
  // a/b/i name a position member and N a count, each one word before the archive.
  let skip = 0;
  if (/[abi]/.test(op)) skip++;
  if (op.includes("N")) skip++;
  const archive = rest[skip];
  if (archive === undefined) return other();
  const members = rest.slice(skip + 1);
  if (/[rq]/.test(op)) return { kind: "archive", inputs: members, outputs: [archive] };
  if (op.replace(/[cuvSDU]/g, "") === "s" && members.length === 0) return { kind: "archive", inputs: [archive], outputs: [archive] };
  return other();
}

/** ranlib rewrites archives in place: each is both read and written. */
function classifyRanlib(argv: readonly string[]): Classified {
  const archives = argv.slice(1).filter((w) => !w.startsWith("-"));
  if (archives.length === 0) return other();
  return { kind: "archive", inputs: archives, outputs: archives };
}
