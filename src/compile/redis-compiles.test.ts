// Table test of the compile model over every compile of Redis 7.0.15's compile database: what parseDriver and parseCompileArgs read agrees with what the parsers they replaced said (testdata/, recorded from them).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCompileArgs, parseDriver } from "./index.js";

const DB = "/work/shared/data/redis-7.0.15-compile_commands.json";
const db = JSON.parse(readFileSync(DB, "utf8")) as { directory: string; arguments: string[] }[];
interface RedisExpectation {
  directory: string;
  kind: string;
  cacheable: boolean;
  sources: string[];
  sourceIndices: number[];
  output: string;
  implied: boolean;
  depfile: string | null;
  includeDirs: string[];
  iquoteDirs: string[];
  isystemDirs: string[];
  idirafterDirs: string[];
  forcedIncludes: string[];
  hasDebugInfo: boolean;
  language: string | null;
}
const expected = JSON.parse(readFileSync(new URL("./testdata/redis-7.0.15-compiles.expected.json", import.meta.url), "utf8")) as RedisExpectation[];

describe("the compile model over Redis's compile database", () => {
  it("has one expectation per entry", () => {
    expect(db.length).toBe(207);
    expect(expected.map((e) => e.directory)).toEqual(db.map((e) => e.directory));
  });

  it.each(db.map((e, i) => [i, e.arguments.at(-1)!, e.arguments, expected[i]!] as const))("#%i %s", (_i, _last, argv, want) => {
    const call = parseDriver(argv);
    expect(call.kind).toBe(want.kind);
    expect(call.sources).toEqual(want.sources);
    expect(call.sourceIndices).toEqual(want.sourceIndices);
    expect(call.output).toEqual({ path: want.output, implied: want.implied });
    expect(call.depfile?.path ?? null).toBe(want.depfile);
    expect({ i: call.includeDirs, q: call.iquoteDirs, s: call.isystemDirs, a: call.idirafterDirs, f: call.forcedIncludes }).toEqual({
      i: want.includeDirs, q: want.iquoteDirs, s: want.isystemDirs, a: want.idirafterDirs, f: want.forcedIncludes,
    });
    expect(call.hasDebugInfo).toBe(want.hasDebugInfo);
    expect(call.language ?? null).toBe(want.language);
    // Every source is where the model says it is in argv.
    for (const [k, index] of call.sourceIndices.entries()) expect(argv[index]).toBe(call.sources[k]);
    const cache = parseCompileArgs(argv, { implicitOutput: true });
    expect({ cacheable: cache.cacheable, output: cache.output }).toEqual({ cacheable: want.cacheable, output: want.output });
    // Without the implied output asked for, a call without -o is one the cache cannot name.
    if (want.implied) expect(parseCompileArgs(argv)).toMatchObject({ cacheable: false, reason: "no -o output" });
  });
});
