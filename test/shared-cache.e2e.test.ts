// End-to-end: two `orion build` processes at once on one cache directory (issue 14, item 7: it works today; this keeps
// it tested). Each builds its own copy of a fixture, cold, both writing the same CAS, action cache and stat cache.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copyFixture, expectBuildOk, makeReference, orionBuild, type OrionEnv, runProgram, Scratch } from "./helpers.js";

const scratch = new Scratch("shared-cache");
const PROGRAMS = ["app1/app1", "app2/app2"];

afterAll(() => scratch.cleanup());

describe("two builds at once on one cache directory", () => {
  for (const driver of ["make", "graph"] as const) {
    it(`both succeed, cold and then warm, and build what make builds (${driver} driver)`, async () => {
      const ref = await makeReference("multi-c", join(scratch.root, `${driver}-ref`), PROGRAMS);
      const env: OrionEnv = { cacheDir: join(scratch.root, `${driver}-cache`), configHome: scratch.configHome, driver };
      for (const round of ["cold", "warm"]) {
        // Fresh copies at the same two paths each round (objects built with -g embed their path).
        const trees = [1, 2].map((i) => copyFixture("multi-c", join(scratch.root, `${driver}-${i}`)));
        const builds = await Promise.all(trees.map((t) => orionBuild(t, env)));
        for (const b of builds) expectBuildOk(b);
        for (const t of trees) for (const p of PROGRAMS) expect(await runProgram(join(t, p)), `${round} ${t} ${p}`).toBe(ref.stdout.get(p));
        // The second round's copies find everything in the cache the first round's filled, whoever wrote it.
        if (round === "warm") for (const b of builds) expect(b.summary.executed, b.stderr).toBe(0);
      }
    }, 120_000);
  }
});
