// Recognises what one build command is (compile, archive, link, dependency generation or anything else) from its argv, and which files it reads and writes.

import path from "node:path";
import { arWritesArchive, isCompilerDriver, parseAr, parseDriver, parseRanlib, toolFamily, withExplicitOutput as spellOutput } from "../src/compile/index.js";
import type { CommandKind } from "./graph.js";

export { isCompilerDriver };

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
  const implied = c.kind === "compile" && c.impliedOutput === true;
  return spellOutput(argv, implied ? { output: { path: c.outputs[0]!, implied } } : {});
}

/** Decides whether a path (as written in argv, relative to the command's cwd) names an existing file. */
export type ExistsFn = (relPath: string) => boolean;

const SOURCE_EXT = new Set([".c", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".C", ".CPP", ".m", ".mm", ".M", ".s", ".S", ".sx", ".i", ".ii"]);
const LINK_INPUT = /\.(o|a|so|lo|obj)$|\.so(\.[0-9]+)+$/;

export function classify(argv: readonly string[], exists: ExistsFn = () => false): Classified {
  const argv0 = argv[0];
  if (argv0 === undefined) return other();
  const family = toolFamily(path.basename(argv0));
  if (family === "driver") return classifyCompiler(argv, exists);
  if (family === "ar") return classifyAr(argv);
  if (family === "ranlib") return classifyRanlib(argv);
  return other();
}

function other(): Classified {
  return { kind: "other", inputs: [], outputs: [] };
}

/**
 * A compile is `-c` with exactly one source. Without `-o` the driver writes
 * `basename(source).o` in its cwd, which compile databases (Redis's hiredis) rely on.
 * A link that also names a source compiles it too, reading headers no argv lists,
 * so it is left "other" rather than risk a cache key that misses them.
 */
function classifyCompiler(argv: readonly string[], exists: ExistsFn): Classified {
  const call = parseDriver(argv);
  const { cxx, modes: m } = call;
  const operands = call.operands.map((o) => o.text);
  // After `-x LANG` every operand is a source whatever its extension.
  const sources = operands.filter((w) => call.explicitLanguage !== undefined || SOURCE_EXT.has(path.extname(w)));

  if (m.depOnly) {
    // -M implies -E: whatever else is given, the command only writes dependency rules.
    return { kind: "depgen", inputs: sources, outputs: call.depOutput !== undefined ? [call.depOutput] : [], cxx };
  }
  if (m.preprocess || m.assemble || m.syntaxOnly) return other();

  if (m.compile) {
    if (sources.length !== 1 || call.output === undefined) return other();
    const outputs = [call.output.path];
    if (call.depfile && (call.flags.has("-MD") || call.flags.has("-MMD"))) outputs.push(call.depfile.path);
    return { kind: "compile", inputs: [sources[0]!, ...call.forcedIncludes], outputs, cxx, ...(call.output.implied ? { impliedOutput: true } : {}) };
  }

  if (call.output === undefined || sources.length > 0) return other();
  const inputs = operands.filter((w) => LINK_INPUT.test(w) || exists(w));
  return { kind: "link", inputs, outputs: [call.output.path], cxx };
}

/**
 * `ar` with an r (replace) or q (append) operation builds an archive from members.
 * Both update an archive that already exists rather than start afresh, so the
 * output is a pure function of the inputs only when the archive is absent, as in
 * a sandbox or a clean build.
 */
function classifyAr(argv: readonly string[]): Classified {
  const call = parseAr(argv);
  const writes = arWritesArchive(call);
  const archive = call.archive?.text;
  if (writes === undefined || archive === undefined) return other();
  if (writes === "members") return { kind: "archive", inputs: call.members.map((w) => w.text), outputs: [archive] };
  return { kind: "archive", inputs: [archive], outputs: [archive] };
}

/** ranlib rewrites archives in place: each is both read and written. */
function classifyRanlib(argv: readonly string[]): Classified {
  const archives = parseRanlib(argv).archives.map((w) => w.text);
  if (archives.length === 0) return other();
  return { kind: "archive", inputs: archives, outputs: archives };
}
