// Table test: classify reads every compile of Redis 7.0.15's compile database as it did before it read the compile model (src/compile/testdata, recorded from the old parser).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classify, withExplicitOutput } from "./classify.js";

const db = JSON.parse(readFileSync("/work/shared/data/redis-7.0.15-compile_commands.json", "utf8")) as { directory: string; arguments: string[] }[];
const expected = JSON.parse(readFileSync(new URL("../src/compile/testdata/redis-7.0.15-compiles.expected.json", import.meta.url), "utf8")) as { dag: unknown; output: string; implied: boolean }[];

describe("classify over Redis's compile database", () => {
  it("classifies every entry as before, and spells out each implied object", () => {
    expect(db.map((e) => classify(e.arguments))).toEqual(expected.map((e) => e.dag));
    for (const [i, e] of db.entries()) {
      const spelled = withExplicitOutput(e.arguments, classify(e.arguments));
      expect(spelled).toEqual(expected[i]!.implied ? [...e.arguments, "-o", expected[i]!.output] : e.arguments);
    }
  });
});
