// make drives the build (`--driver make`): the real CLI runs make with the shell shim, and every compiler, archiver
// and linker call make issues comes back as an action — on a plain Makefile, a CMake build dir (sub-makes, cmake -E,
// link scripts, a generated header, a shared library with version links) and a build that fails.
import { execa } from "execa";
import { cpSync, existsSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, copyFixture, expectBuildOk, FIXTURES, orionBuild, outcomes, programOutputs, runMake, runOrion, runProgram, Scratch, type OrionEnv } from "./helpers.js";

const scratch = new Scratch("drive");
let env: OrionEnv;

beforeAll(() => {
  env = { cacheDir: scratch.dir("cache"), configHome: scratch.configHome };
});
afterAll(() => scratch.cleanup());

const MAKE = ["--driver", "make"];

/** Builds dir with `command` under bear (Debian's compile recorder) and counts the compiles it recorded. */
async function bearCompiles(dir: string, command: string[]): Promise<number> {
  const db = join(dir, "bear-compile_commands.json");
  const r = await execa("bear", ["--output", db, "--", ...command], { cwd: dir, env: cleanEnv(), extendEnv: false, reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(readFileSync(db, "utf8")) as unknown[]).length;
}

describe("make drives the build", () => {
  it("multi-c: every compile, archive and link is an action; outputs equal make's; a fresh copy executes nothing", async () => {
    const dir = copyFixture("multi-c", join(scratch.root, "multi-c"));
    const b = await orionBuild(dir, env, MAKE);
    expectBuildOk(b);
    const out = outcomes(b.events);
    const labels = [...out.executed, ...out.cached];
    expect(labels.filter((l) => l.startsWith("CC "))).toHaveLength(28);
    expect(labels.filter((l) => l.startsWith("AR "))).toHaveLength(2);
    expect(labels.filter((l) => l.startsWith("LINK "))).toHaveLength(2);
    expect(b.summary.hostSteps).toBe(0);
    const ours = await programOutputs(dir, ["app1/app1", "app2/app2"]);

    const plain = copyFixture("multi-c", join(scratch.root, "multi-c-make"));
    expect((await runMake(plain)).exitCode).toBe(0);
    expect(ours).toEqual(await programOutputs(plain, ["app1/app1", "app2/app2"]));

    // The same tree again, fresh at the same path: every compile is a cache hit.
    copyFixture("multi-c", dir);
    const warm = await orionBuild(dir, env, MAKE);
    expectBuildOk(warm);
    expect(outcomes(warm.events).cached.filter((l) => l.startsWith("CC "))).toHaveLength(28);
    expect(outcomes(warm.events).executed).toEqual([]);
    expect(await programOutputs(dir, ["app1/app1", "app2/app2"])).toEqual(ours);
  });

  it("multi-source: one action per source, links of sources split into compiles and a link; counts equal bear's", async () => {
    const dir = copyFixture("multi-source", join(scratch.root, "multi-source"));
    const b = await orionBuild(dir, env, MAKE);
    expectBuildOk(b);
    const out = outcomes(b.events);
    const done = [...out.executed, ...out.cached];
    expect(done.filter((l) => l.startsWith("CC ")).sort()).toEqual(["CC a.o", "CC b.o", "CC c.o", "CC d.o", "CC main.c", "CC shout.c", "CC whisper.c"]);
    expect(done.filter((l) => l.startsWith("LINK ")).sort()).toEqual(["LINK app", "LINK libshout.so"]);
    const ours = await runProgram(join(dir, "app"));

    const plain = copyFixture("multi-source", join(scratch.root, "multi-source-bear"));
    expect(await bearCompiles(plain, ["make", "-j2"])).toBe(7);
    expect(ours).toBe(await runProgram(join(plain, "app")));

    copyFixture("multi-source", dir);
    const warm = await orionBuild(dir, env, MAKE);
    expectBuildOk(warm);
    expect(outcomes(warm.events).executed).toEqual([]);
    expect(await runProgram(join(dir, "app"))).toBe(ours);
  });

  it("a compile error: the compiler's own diagnostics, exit 1", async () => {
    const dir = copyFixture("compile-error", join(scratch.root, "compile-error"));
    const r = await runOrion(["build", dir, ...MAKE], env);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/bad\.c.*error/);
  });

  it("a CMake build dir: libraries, version links, generated header; outputs equal cmake --build's", async () => {
    const src = join(scratch.root, "cmake-src");
    cpSync(join(FIXTURES, "cmake-lib"), src, { recursive: true });
    const build = join(scratch.root, "cmake-build");
    const configure = async (dir: string) => {
      rmSync(dir, { recursive: true, force: true });
      const r = await execa("cmake", ["-S", src, "-B", dir], { env: cleanEnv(), extendEnv: false, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
    };
    await configure(build);
    const b = await orionBuild(build, env, MAKE);
    expectBuildOk(b);
    const out = outcomes(b.events);
    expect([...out.executed, ...out.cached].filter((l) => l.startsWith("CC "))).toHaveLength(4);
    expect(readlinkSync(join(build, "libgreet.so"))).toBe("libgreet.so.1");
    const ours = (await execa(join(build, "app"), { env: cleanEnv({ LD_LIBRARY_PATH: build }) })).stdout;

    const ref = join(scratch.root, "cmake-ref");
    await configure(ref);
    expect(await bearCompiles(ref, ["cmake", "--build", ref, "-j2"])).toBe(4);
    expect(ours).toBe((await execa(join(ref, "app"), { env: cleanEnv({ LD_LIBRARY_PATH: ref }) })).stdout);
    expect(readFileSync(join(build, "generated", "version.h"), "utf8")).toBe(readFileSync(join(ref, "generated", "version.h"), "utf8"));

    // A fresh build dir at the same path: nothing executes.
    await configure(build);
    const warm = await orionBuild(build, env, MAKE);
    expectBuildOk(warm);
    expect(outcomes(warm.events).executed).toEqual([]);
    expect(existsSync(join(build, "app"))).toBe(true);
  });
});
