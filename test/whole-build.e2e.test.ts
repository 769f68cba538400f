// End-to-end: the whole build restored as one step (src/drive/replay.ts). fixtures/gen-header (a generator step, two
// compiles and a link) is built once; a fresh copy at the same path is then restored without make running, byte for
// byte and up to date for make; a copy whose times stand in another order where make compares none of them is restored
// too; a copy where a file the build reads differs, where a pair of files make compares stands the other way, a copy of
// another shape, another environment, or ORION_WHOLE_BUILD=0 is built by make as usual, each correct.
import { appendFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copyFixture, differingFiles, orionBuild, type OrionEnv, runMake, runProgram, Scratch, snapshot } from "./helpers.js";

const scratch = new Scratch("whole-build");
afterAll(() => scratch.cleanup());

const OUTPUTS = ["hello", "main.o", "greet.o", "include/version.h"];

describe("a build whose tree comes again", () => {
  it(
    "is restored whole when every file it read is the same, and built by make otherwise",
    async () => {
      const tree = join(scratch.root, "gen");
      // Each fresh copy's files get the same times, one second apart, as a tarball's extract would.
      const TIMED = ["Makefile", "VERSION", "gen-version.sh", "include/greet.h", "main.c", "greet.c", "NOTES"];
      const fresh = (edit?: () => void) => {
        copyFixture("gen-header", tree);
        writeFileSync(join(tree, "NOTES"), "read by nobody\n");
        TIMED.forEach((f, i) => utimesSync(join(tree, f), 1_700_000_000 + i, 1_700_000_000 + i));
        edit?.();
      };
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };

      fresh();
      const cold = await orionBuild(tree, orion);
      expect(cold.exitCode, cold.stderr).toBe(0);
      expect(cold.summary.replayed).toBeUndefined();
      expect(cold.summary.executed).toBe(3);
      const want = snapshot(tree, OUTPUTS);
      const greeting = await runProgram(join(tree, "hello"));

      // The same tree again, a file nobody reads changed: restored, make not run, the same bytes, make's own output.
      fresh(() => writeFileSync(join(tree, "NOTES"), "still read by nobody\n"));
      const warm = await orionBuild(tree, orion);
      expect(warm.exitCode, warm.stderr).toBe(0);
      expect(warm.summary.replayed).toBe(true);
      expect(warm.summary).toMatchObject({ actions: 3, executed: 0, cacheHits: 3, hostSteps: cold.summary.hostSteps });
      expect(warm.stderr).toContain("-c main.c -o main.o");
      expect(differingFiles(tree, want)).toEqual([]);
      expect(await runProgram(join(tree, "hello"))).toBe(greeting);
      // Up to date for make: the outputs were restored in the order make wrote them.
      expect((await runMake(tree, ["-q"])).exitCode).toBe(0);
      // And the no-op after it is make's, not a second restore.
      const noop = await orionBuild(tree, orion);
      expect(noop.summary.replayed).toBeUndefined();
      expect(noop.summary.actions).toBe(0);

      // The same bytes, a source now newer than every other file: make compares no two files the tree came with (every
      // target is missing), so the times it decides by stand as they stood: restored.
      fresh(() => utimesSync(join(tree, "main.c"), 1_700_000_100, 1_700_000_100));
      const reordered = await orionBuild(tree, orion);
      expect(reordered.exitCode, reordered.stderr).toBe(0);
      expect(reordered.summary.replayed).toBe(true);
      expect(differingFiles(tree, want)).toEqual([]);

      // A file the build reads differs: make runs, and the greeting follows the source.
      fresh(() => appendFileSync(join(tree, "greet.c"), "/* edited */\n"));
      const edited = await orionBuild(tree, orion);
      expect(edited.exitCode, edited.stderr).toBe(0);
      expect(edited.summary.replayed).toBeUndefined();
      expect(edited.summary.executed).toBeGreaterThanOrEqual(1);
      expect(await runProgram(join(tree, "hello"))).toBe(greeting);

      // Another shape (a header appears where the compiler looks first): make runs.
      fresh(() => {
        mkdirSync(join(tree, "extra"));
        writeFileSync(join(tree, "extra", "x.h"), "\n");
      });
      const shaped = await orionBuild(tree, orion);
      expect(shaped.summary.replayed).toBeUndefined();

      // Another environment make reads (CFLAGS): make runs, with those flags.
      fresh();
      const flagged = await orionBuild(tree, { ...orion, env: { CFLAGS: "-O0 -Wall" } });
      expect(flagged.exitCode, flagged.stderr).toBe(0);
      expect(flagged.summary.replayed).toBeUndefined();
      expect(flagged.stderr).toContain("-O0 -Wall");

      // Turned off.
      fresh();
      const off = await orionBuild(tree, { ...orion, env: { ORION_WHOLE_BUILD: "0" } });
      expect(off.summary.replayed).toBeUndefined();
      expect(differingFiles(tree, want)).toEqual([]);

      // A tree where an output is there already: make decides, and builds the rest.
      fresh(() => writeFileSync(join(tree, "main.o"), want.get("main.o")!));
      const partial = await orionBuild(tree, orion);
      expect(partial.exitCode, partial.stderr).toBe(0);
      expect(partial.summary.replayed).toBeUndefined();
      expect(differingFiles(tree, want)).toEqual([]);
    },
    120_000,
  );

  it(
    "is held to the pairs of files make compared: another order elsewhere is restored, a pair the other way is built",
    async () => {
      // The tree comes with gen.h, newer than the gen.in it is made from: make compares the two and keeps it.
      const tree = join(scratch.root, "shipped");
      const fresh = (genInAt: number, progAt = 1_700_000_002) => {
        rmSync(tree, { recursive: true, force: true });
        mkdirSync(tree, { recursive: true });
        writeFileSync(join(tree, "Makefile"), "all: prog\ngen.h: gen.in\n\tcp gen.in gen.h\nprog: prog.c gen.h\n\t$(CC) -o prog prog.c\n");
        writeFileSync(join(tree, "gen.in"), "#define GREETING \"hi\"\n");
        writeFileSync(join(tree, "gen.h"), "#define GREETING \"hi\"\n");
        writeFileSync(join(tree, "prog.c"), '#include <stdio.h>\n#include "gen.h"\nint main(void) { puts(GREETING); return 0; }\n');
        utimesSync(join(tree, "Makefile"), 1_700_000_000, 1_700_000_000);
        utimesSync(join(tree, "gen.in"), genInAt, genInAt);
        utimesSync(join(tree, "prog.c"), progAt, progAt);
        utimesSync(join(tree, "gen.h"), 1_700_000_010, 1_700_000_010);
      };
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-shipped"), configHome: scratch.configHome };
      fresh(1_700_000_001);
      const kept = await orionBuild(tree, orion);
      expect(kept.exitCode, kept.stderr).toBe(0);
      expect(kept.stderr).not.toContain("cp gen.in");
      // prog.c now the newest file: make compares it with nothing that was there (prog is missing), so restored.
      fresh(1_700_000_001, 1_700_000_100);
      const again = await orionBuild(tree, orion);
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.summary.replayed).toBe(true);
      expect(await runProgram(join(tree, "prog"))).toBe("hi");
      // gen.in now newer than gen.h (the same bytes): make would copy it again, so make runs.
      fresh(1_700_000_050);
      const remade = await orionBuild(tree, orion);
      expect(remade.exitCode, remade.stderr).toBe(0);
      expect(remade.summary.replayed).toBeUndefined();
      expect(remade.stderr).toContain("cp gen.in gen.h");
      expect(await runProgram(join(tree, "prog"))).toBe("hi");
    },
    60_000,
  );
});
