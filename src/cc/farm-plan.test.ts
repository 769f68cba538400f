import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCompileArgs } from "../compile/index.js";
import { FreshRuns, findProjectRoot, isContextNoise, planFarmCompile } from "./farm-plan.js";

const tmp = mkdtempSync(join(tmpdir(), "orion-farm-plan-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A project at tmp/p with the folders the compiles below write into. */
const P = join(tmp, "p");
for (const d of ["sub/out", "deps"]) mkdirSync(join(P, d), { recursive: true });

function plan(argv: string[], cwd = join(P, "sub"), root = P) {
  return planFarmCompile("/usr/bin/gcc", argv, cwd, parseCompileArgs(argv, { implicitOutput: true }), root);
}

describe("findProjectRoot", () => {
  it("takes ORION_PROJECT_ROOT (relative to the cwd), else the nearest .git, else the cwd", () => {
    const repo = join(tmp, "repo");
    const deep = join(repo, "a", "b");
    mkdirSync(deep, { recursive: true });
    expect(findProjectRoot(deep, { ORION_PROJECT_ROOT: ".." })).toBe(join(repo, "a"));
    mkdirSync(join(repo, ".git"));
    expect(findProjectRoot(deep, {})).toBe(repo);
    const loose = join(tmp, "loose", "x");
    mkdirSync(loose, { recursive: true });
    // Nothing above holds .git (the temp dir is not in a repository): the cwd itself.
    if (findProjectRoot(tmp, {}) === tmp) expect(findProjectRoot(loose, {})).toBe(loose);
  });
});

describe("planFarmCompile", () => {
  it("turns a plain compile into a one-compile action: tree paths, the cwd's place in the tree, -MD to learn the headers", () => {
    const p = plan(["gcc", "-O2", "-I../inc", "-c", "x.c", "-o", "out/x.o"]);
    expect(p).toEqual({
      root: P,
      cwd: "sub",
      argv: ["/usr/bin/gcc", "-O2", "-I../inc", "-c", "x.c", "-o", "out/x.o", "-MD"],
      source: "sub/x.c",
      object: "out/x.o",
      depfile: "out/x.d",
      depfileWanted: false,
      outputs: ["sub/out/x.o", "sub/out/x.d"],
      label: "CC sub/out/x.o",
    });
  });

  it("keeps the user's own depfile, and writes it back", () => {
    const p = plan(["gcc", "-MMD", "-MF", "deps/x.dep", "-c", "x.c", "-o", "x.o"], P, P);
    expect(p).toMatchObject({ cwd: "", argv: ["/usr/bin/gcc", "-MMD", "-MF", "deps/x.dep", "-c", "x.c", "-o", "x.o"], depfile: "deps/x.dep", depfileWanted: true, outputs: ["x.o", "deps/x.dep"] });
  });

  it("sends a -c without -o as the same call with its implied object spelled out, as -o x.o would go", () => {
    const explicit = plan(["gcc", "-O2", "-c", "x.c", "-o", "x.o"]);
    expect(plan(["gcc", "-O2", "-c", "x.c"])).toEqual(explicit);
    expect(explicit).toMatchObject({ argv: ["/usr/bin/gcc", "-O2", "-c", "x.c", "-o", "x.o", "-MD"], object: "x.o", depfile: "x.d", outputs: ["sub/x.o", "sub/x.d"] });
    expect(plan(["gcc", "-MMD", "-c", "../sub/x.c"])).toMatchObject({ argv: ["/usr/bin/gcc", "-MMD", "-c", "../sub/x.c", "-o", "x.o"], depfile: "x.d", depfileWanted: true });
  });

  it("leaves here what a node's sandbox cannot run", () => {
    expect(plan(["gcc", "-S", "x.c", "-o", "x.s"])).toBeTypeOf("string");
    expect(plan(["gcc", "-c", "x.c", "-o", "../x.o"])).toMatch(/not below the cwd/);
    expect(plan(["gcc", "-c", "/elsewhere/x.c", "-o", "x.o"])).toMatch(/outside the project root/);
    expect(plan(["gcc", "-c", "x.c", "-o", "x.o"], tmp, P)).toMatch(/outside the project root/);
    expect(plan(["gcc", "-c", "x.c", "-o", "nowhere/x.o"])).toMatch(/folder does not exist/);
    expect(plan(["gcc", "-Wp,-MD,x.d", "-c", "x.c", "-o", "x.o"])).toMatch(/-Wp/);
    expect(plan(["gcc", "-MF", "x.d", "-c", "x.c", "-o", "x.o"])).toMatch(/-MF without -MD/);
  });

  it("leaves here what a node's argv policy would refuse, naming the option", () => {
    expect(plan(["gcc", "-wrapper", "./w.sh", "-c", "x.c", "-o", "x.o"])).toMatch(/a node would refuse -wrapper/);
    expect(plan(["gcc", "-I/opt/vendor/include", "-c", "x.c", "-o", "x.o"])).toMatch(/a node would refuse -I: .*outside the project root/);
    expect(plan(["gcc", "-include", "/etc/passwd", "-c", "x.c", "-o", "x.o"])).toMatch(/a node would refuse -include/);
    expect(plan(["gcc", "-I../../../x", "-c", "x.c", "-o", "x.o"])).toMatch(/climbs out of the project root/);
    const cmake = plan(["gcc", `-I${P}/inc`, "-c", `${P}/sub/x.c`, "-o", "out/x.o"]);
    expect(cmake).toMatchObject({ source: "sub/x.c", object: "out/x.o" });
    const withEnv = planFarmCompile("/usr/bin/gcc", ["gcc", "-c", "x.c", "-o", "x.o"], join(P, "sub"), parseCompileArgs(["gcc", "-c", "x.c", "-o", "x.o"]), P, [["COMPILER_PATH", join(P, "bin")]]);
    expect(withEnv).toMatch(/a node would refuse COMPILER_PATH/);
  });
});

describe("isContextNoise", () => {
  it("leaves objects, archives, depfiles and Orion's temporary files out of a context, never sources or headers", () => {
    expect(["lib/a.o", "lib/libx.a", "gen/x.d", "lib/.a.o.orion-1234", "app/app.orion-tmp-9-ab"].map(isContextNoise)).toEqual([true, true, true, true, true]);
    expect(["lib/a.c", "lib/a.h", "a.out", ".orionrc"].map(isContextNoise)).toEqual([false, false, false, false]);
  });
});

describe("FreshRuns", () => {
  it("gives each caller a run started after its call, sharing one queued run among the callers that wait", async () => {
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const runs = new FreshRuns(async () => {
      const n = started.length + 1;
      started.push(n);
      await new Promise<void>((r) => gates.push(r));
      return n;
    });
    const a = runs.run();
    await Promise.resolve();
    await Promise.resolve();
    // b and c arrive while run 1 is in flight: both get run 2, which starts only once run 1 has finished.
    const b = runs.run();
    const c = runs.run();
    expect(started).toEqual([1]);
    gates.shift()!();
    expect(await a).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2]);
    gates.shift()!();
    expect([await b, await c]).toEqual([2, 2]);
    // Idle: the next caller starts a run at once.
    const d = runs.run();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    gates.shift()!();
    expect(await d).toBe(3);
  });

  it("a failed run fails its callers only; the next caller runs again", async () => {
    let n = 0;
    const runs = new FreshRuns(async () => {
      if (++n === 1) throw new Error("boom");
      return n;
    });
    await expect(runs.run()).rejects.toThrow("boom");
    expect(await runs.run()).toBe(2);
  });
});
