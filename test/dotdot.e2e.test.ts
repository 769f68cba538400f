// End-to-end: `orion build` (embedded head + node, real gcc) of fixtures/dotdot, whose sub-make in programs/ compiles
// `../lib/a.c -o ../lib/a.o` — outputs in a sibling of its cwd — compared byte for byte with plain make's build.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildOutputs,
  copyFixture,
  differingFiles,
  expectBuildOk,
  makeReference,
  orionBuild,
  type OrionEnv,
  outcomes,
  programOutputs,
  runMake,
  Scratch,
} from "./helpers.js";

const scratch = new Scratch("dotdot");
afterAll(() => scratch.cleanup());

const PROGRAMS = ["programs/hello"];
/** hello.o, ../lib/a.o, ../lib/b.o and the link of hello (fixtures/dotdot/programs/Makefile). */
const ACTIONS = 4;

describe("dotdot: a sub-make writing its objects into a sibling folder through ../", () => {
  // The same absolute path for make's reference build and for Orion's: objects built with -g embed the cwd.
  const tree = join(scratch.root, "dotdot");
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };
  let ref: { outputs: Map<string, Buffer>; stdout: Map<string, string> };

  beforeAll(async () => {
    ref = await makeReference("dotdot", tree, PROGRAMS);
  });

  it("builds every action (none refused or retried) with make's exact outputs", async () => {
    copyFixture("dotdot", tree);
    const b = await orionBuild(tree, orion);
    expectBuildOk(b);
    expect(b.summary.actions).toBe(ACTIONS);
    expect(b.summary.executed).toBe(ACTIONS);
    expect(b.events.filter((e) => e.type === "action" && e.state === "retry"), "retried actions").toEqual([]);
    expect(outcomes(b.events).executed.filter((l) => /lib\/[ab]\.o$/.test(l))).toHaveLength(2);

    const refNames = [...ref.outputs.keys()];
    expect(refNames).toEqual(["lib/a.o", "lib/b.o", "programs/hello", "programs/hello.o"]);
    expect(buildOutputs(tree, PROGRAMS)).toEqual(refNames);
    expect(differingFiles(tree, ref.outputs), "outputs that differ from make's").toEqual([]);
    expect(await programOutputs(tree, PROGRAMS)).toEqual(ref.stdout);
    // Nothing was written beside the project: make agrees the tree is up to date.
    expect((await runMake(tree, ["-q", "-C", "programs"])).exitCode).toBe(0);
  });

  it("a second build of the unchanged tree executes nothing", async () => {
    const again = await orionBuild(tree, orion);
    expectBuildOk(again);
    expect(again.summary.executed).toBe(0);
  });
});
