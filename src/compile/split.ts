// One driver call that does several things, split into calls that each do one: `cc -c a.c b.c` into one compile per
// source, and `cc -shared a.c b.c -o libx.so` into one compile per source plus the link of their objects — so each
// compile is keyed, cached and scheduled on its own.
import { parseDriver } from "./driver.js";

export type DriverSplit =
  /** `-c` (or `-S`) of several sources without `-o`: each writes its own default output, as the whole call would. */
  | { kind: "compiles"; compiles: string[][] }
  /** A link that also compiles sources: compile each to `objectFor(i, source)`, then link with those objects in their place. */
  | { kind: "compile-and-link"; compiles: string[][]; objects: string[]; link: string[] };

/**
 * How to split `argv`, or undefined when it is one thing already (or when splitting could change what it does: stdin,
 * response files, `-x LANG`, dependency output, a `-o` with several compiled sources). `objectFor(i, source)` names the
 * object of the i-th source of a link (a path the caller owns).
 */
export function splitDriverCall(argv: readonly string[], objectFor: (i: number, source: string) => string): DriverSplit | undefined {
  const call = parseDriver(argv);
  if (call.sources.length === 0 || call.stdin || call.responseFiles.length > 0 || call.explicitLanguage !== undefined) return undefined;
  const { modes } = call;
  if (modes.preprocess || modes.depOnly || modes.syntaxOnly) return undefined;
  const compiling = modes.compile || modes.assemble;
  if (compiling) {
    if (call.sources.length < 2 || (call.output && !call.output.implied)) return undefined;
    return { kind: "compiles", compiles: call.sourceIndices.map((at) => argv.filter((_, j) => j === at || !call.sourceIndices.includes(j))) };
  }
  // A link of sources (and maybe objects): -MD here would write one depfile for the whole call; leave it whole.
  if (modes.depWithCompile || call.depfileNamed !== undefined) return undefined;
  const operandAt = new Set(call.operands.map((o) => o.index));
  const outputAt = outputIndices(argv, call.output?.implied === false ? call.output.path : undefined);
  const options = argv.filter((_, j) => j > 0 && !operandAt.has(j) && !outputAt.has(j));
  const objects = call.sources.map((s, i) => objectFor(i, s));
  const compiles = call.sources.map((s, i) => [argv[0]!, ...options, "-c", s, "-o", objects[i]!]);
  const objectAt = new Map(call.sourceIndices.map((at, i) => [at, objects[i]!]));
  const link = argv.map((w, j) => objectAt.get(j) ?? w);
  return { kind: "compile-and-link", compiles, objects, link };
}

/** Where `-o PATH` (or `-oPATH`) sits in argv. */
function outputIndices(argv: readonly string[], path: string | undefined): Set<number> {
  const at = new Set<number>();
  if (path === undefined) return at;
  for (let j = 1; j < argv.length; j++) {
    if (argv[j] === "-o" && argv[j + 1] === path) {
      at.add(j).add(j + 1);
      j++;
    } else if (argv[j] === `-o${path}`) at.add(j);
  }
  return at;
}
