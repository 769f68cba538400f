// Table test: which of Redis 7.0.15's compiles take the shared-context path as written, and which once their implied object is spelled out, as before the compile model (src/compile/testdata).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isSharedContextCompile, withImplicitObject } from "./compile-plan.js";

const db = JSON.parse(readFileSync("/work/shared/data/redis-7.0.15-compile_commands.json", "utf8")) as { directory: string; arguments: string[] }[];
const expected = JSON.parse(readFileSync(new URL("../compile/testdata/redis-7.0.15-compiles.expected.json", import.meta.url), "utf8")) as { sharedContext: boolean; spelledOutput: boolean; output: string }[];

describe("the shared-context plan over Redis's compile database", () => {
  it("takes every compile with -o as written, and every one without once its object is spelled out", () => {
    expect(db.map((e) => isSharedContextCompile(e.arguments))).toEqual(expected.map((e) => e.sharedContext));
    expect(db.map((e) => withImplicitObject(e.arguments))).toEqual(expected.map((e, i) => (e.spelledOutput ? [...db[i]!.arguments, "-o", e.output] : undefined)));
    expect(db.every((e) => isSharedContextCompile(withImplicitObject(e.arguments) ?? e.arguments))).toBe(true);
  });
});
