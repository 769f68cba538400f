// End-to-end: host steps cached as whole steps (traced by the preload library, else strace) by the real `orion build` CLI.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findProgram } from "../src/core/programs.js";
import { copyFixture, orionBuild, type OrionEnv, runOrion, runProgram, Scratch } from "./helpers.js";

const scratch = new Scratch("steps");
afterAll(() => scratch.cleanup());

describe.skipIf(findProgram("strace", process.cwd()) === undefined)("whole-step cache", () => {
  const tree = join(scratch.root, "gen-header");
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };
  const hostEvents = (b: Awaited<ReturnType<typeof orionBuild>>) => b.events.filter((e) => e.type === "host-step" && e.state === "finished");

  it("a fresh copy at the same path restores the generator's header instead of running it; a changed input runs it", async () => {
    copyFixture("gen-header", tree);
    const cold = await orionBuild(tree, orion);
    expect(cold.exitCode).toBe(0);
    expect(cold.summary.hostStepsCached).toBe(0);
    const header = readFileSync(join(tree, "include/version.h"), "utf8");

    copyFixture("gen-header", tree);
    const warm = await orionBuild(tree, orion);
    expect(warm.exitCode).toBe(0);
    expect(warm.summary).toMatchObject({ executed: 0, hostStepsCached: 1 });
    expect(hostEvents(warm).every((e) => e.cached === true)).toBe(true);
    expect(readFileSync(join(tree, "include/version.h"), "utf8")).toBe(header);
    expect(await runProgram(join(tree, "hello"))).toMatch(/^hello, orion \(version /);

    // The generator reads VERSION: a new one is a miss, never a stale header.
    copyFixture("gen-header", tree);
    writeFileSync(join(tree, "VERSION"), "4.5.6-steps\n");
    const changed = await orionBuild(tree, orion);
    expect(changed.exitCode).toBe(0);
    expect(changed.summary.hostStepsCached).toBe(0);
    expect(await runProgram(join(tree, "hello"))).toBe("hello, orion (version 4.5.6-steps)");
  });

  it("--no-cache runs every host step", async () => {
    copyFixture("gen-header", tree);
    const b = await orionBuild(tree, orion, ["--no-cache"]);
    expect(b.exitCode).toBe(0);
    expect(b.summary.hostStepsCached).toBe(0);
    expect(hostEvents(b).some((e) => e.cached)).toBe(false);
  });

  it("orion cache stats counts stored steps; clear empties them", async () => {
    const stats = await runOrion(["cache", "stats", "--json"], orion);
    expect(JSON.parse(stats.stdout).steps).toBeGreaterThanOrEqual(2);
    expect((await runOrion(["cache", "clear"], orion)).exitCode).toBe(0);
    expect(JSON.parse((await runOrion(["cache", "stats", "--json"], orion)).stdout).steps).toBe(0);
  });
});
