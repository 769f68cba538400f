// End-to-end: a race make's graph does not order (fixtures/race-step: main.o includes gen.h, which a step rewrites,
// without a prerequisite saying so). make -j2 compiles main.o while the step writes gen.h; orion build sees it in the
// step's trace and the compile's headers, removes main.o, and runs make again: the outputs are make -j1's, the order
// the Makefile intends.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copyFixture, differingFiles, orionBuild, type OrionEnv, runMake, runProgram, Scratch, snapshot } from "./helpers.js";

const scratch = new Scratch("race-step");
afterAll(() => scratch.cleanup());

describe("a step and a compile make runs at once, one writing what the other reads", () => {
  it(
    "is caught and redone: main prints what make -j1 makes it print, and the objects are its bytes",
    async () => {
      const tree = join(scratch.root, "race");
      copyFixture("race-step", tree);
      const ref = await runMake(tree, ["-j1"]);
      expect(ref.exitCode, ref.stderr).toBe(0);
      const want = snapshot(tree, ["main.o", "main", "gen.h"]);
      expect(await runProgram(join(tree, "main"))).toBe("2");

      copyFixture("race-step", tree);
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };
      const b = await orionBuild(tree, orion);
      expect(b.exitCode, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/CC main\.o ran while `\.\/gen\.sh` wrote .*gen\.h, and make did not order them/);
      expect(await runProgram(join(tree, "main"))).toBe("2");
      expect(differingFiles(tree, want)).toEqual([]);

      // Nothing races on the next build (the step is up to date): no second pass, nothing to say.
      const again = await orionBuild(tree, orion);
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stderr).not.toMatch(/did not order them/);
    },
    60_000,
  );
});
