// End-to-end: the real `orion build` CLI (a child process, embedded head + node) with real gcc on
// temp copies of the fixtures, compared against plain make.
import { chmodSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildOutputs,
  cleanEnv,
  copyFixture,
  differingFiles,
  expectBuildOk as expectOk,
  FIXTURES,
  lines,
  listFiles,
  makeReference,
  type OrionBuild,
  orionBuild,
  type OrionEnv,
  outcomes,
  programOutputs,
  runMake,
  runProgram,
  Scratch,
  snapshot,
} from "./helpers.js";

const scratch = new Scratch("build");
afterAll(() => scratch.cleanup());

const MULTI_C_PROGRAMS = ["app1/app1", "app2/app2"];
/** 28 compiles + 2 archives + 2 links (fixtures/multi-c/Makefile). */
const MULTI_C_ACTIONS = 32;
/** Both programs link $(LIBS), which includes lib/libcalc.a (fixtures/multi-c/Makefile). */
const APPS_LINKING_LIBCALC = 2;

function objectPath(label: string): string | undefined {
  return /(\S+\.o)$/.exec(label)?.[1];
}

describe("multi-c: cold, warm, incremental and cache-reuse builds (one tree at a fixed path)", () => {
  // The same absolute path for make's reference build and for Orion's builds: objects built with -g embed the cwd.
  const tree = join(scratch.root, "multi-c");
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-multi-c"), configHome: scratch.configHome };
  let ref: { outputs: Map<string, Buffer>; stdout: Map<string, string> };
  let cold: OrionBuild;

  beforeAll(async () => {
    ref = await makeReference("multi-c", tree, MULTI_C_PROGRAMS);
  });

  it("1. cold build executes all 32 actions and produces make's exact outputs", async () => {
    copyFixture("multi-c", tree);
    cold = await orionBuild(tree, orion);
    expectOk(cold);
    expect(cold.summary.actions).toBe(MULTI_C_ACTIONS);
    expect(cold.summary.executed).toBe(MULTI_C_ACTIONS);
    expect(cold.summary.cacheHits).toBe(0);
    expect(cold.events[0]!.type).toBe("build-start");
    expect(cold.events.at(-1)!.type).toBe("summary");
    const kinds = outcomes(cold.events);
    expect(kinds.executed.filter((l) => objectPath(l)).length).toBe(28);

    // The programs print exactly what make's build prints.
    expect(await programOutputs(tree, MULTI_C_PROGRAMS)).toEqual(ref.stdout);
    expect(lines(ref.stdout.get("app1/app1")!)).toContain("add(40,2) = 42");

    // Same outputs, byte for byte: 28 objects, 2 archives, 2 programs.
    const refNames = [...ref.outputs.keys()];
    expect(refNames.filter((r) => r.endsWith(".o"))).toHaveLength(28);
    expect(refNames.filter((r) => r.endsWith(".a"))).toEqual(["lib/libcalc.a", "util/libutil.a"]);
    expect(buildOutputs(tree, MULTI_C_PROGRAMS)).toEqual(refNames);
    expect(differingFiles(tree, ref.outputs), "outputs that differ from make's").toEqual([]);
  });

  it("2. a second run of the unchanged tree executes nothing, and make -q agrees the tree is up to date", async () => {
    expect((await runMake(tree, ["-q"])).exitCode, "make -q right after the cold orion build").toBe(0);
    const again = await orionBuild(tree, orion);
    expectOk(again);
    expect(again.summary.executed).toBe(0);
    expect((await runMake(tree, ["-q"])).exitCode, "make -q after the second orion build").toBe(0);
  });

  it("3. touching lib/add.c without changing it executes nothing and hits the cache", async () => {
    const src = join(tree, "lib/add.c");
    const now = new Date();
    utimesSync(src, now, now);
    expect((await runMake(tree, ["-q"])).exitCode, "precondition: make sees lib/add.o out of date").not.toBe(0);

    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.executed).toBe(0);
    expect(b.summary.cacheHits).toBeGreaterThanOrEqual(1);
    expect(outcomes(b.events).cached).toContain("CC lib/add.o");
    expect((await runMake(tree, ["-q"])).exitCode, "make -q after the rebuild").toBe(0);
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
  });

  it("4. a fresh copy of the tree at the same path is built entirely from the cache", async () => {
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.actions).toBe(MULTI_C_ACTIONS);
    expect(b.summary.executed).toBe(0);
    expect(b.summary.cacheHits).toBe(MULTI_C_ACTIONS);
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
    expect(await programOutputs(tree, MULTI_C_PROGRAMS)).toEqual(ref.stdout);
    expect((await runMake(tree, ["-q"])).exitCode).toBe(0);
  });

  it("5. changing lib/pow.c re-executes exactly its compile, libcalc.a and the links that use it", async () => {
    const src = join(tree, "lib/pow.c");
    const text = readFileSync(src, "utf8");
    expect(text).toContain("long result = 1;");
    writeFileSync(src, text.replace("long result = 1;", "long result = 2;"));

    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.executed).toBe(1 + 1 + APPS_LINKING_LIBCALC);
    expect(outcomes(b.events).executed).toEqual(["AR lib/libcalc.a", "CC lib/pow.o", "LINK app1/app1", "LINK app2/app2"].sort());

    const expected = ref.stdout.get("app1/app1")!.replace("pow(3,13) = 1594323", "pow(3,13) = 3188646");
    expect(expected).not.toBe(ref.stdout.get("app1/app1"));
    expect(await runProgram(join(tree, "app1/app1"))).toBe(expected);
    expect(await runProgram(join(tree, "app2/app2"))).toBe(ref.stdout.get("app2/app2"));
    expect((await runMake(tree, ["-q"])).exitCode).toBe(0);
  });

  it("6. a new declaration in lib/calc.h re-executes exactly the compiles that include it", async () => {
    const header = join(tree, "lib/calc.h");
    writeFileSync(header, readFileSync(header, "utf8").replace("#endif", "long calc_unused_e2e(long a);\n\n#endif"));
    // make's own dependency rules: the objects `make -n` would now recompile.
    const dry = await runMake(tree, ["-n"]);
    expect(dry.exitCode).toBe(0);
    const declared = new Set(lines(dry.stdout).filter((l) => / -c /.test(l)).map((l) => / -o (\S+\.o)\b/.exec(l)?.[1]).filter((x): x is string => !!x));
    // lib/*.o (12), app1/*.o (2), app2/*.o (2); none of util/.
    expect(declared.size).toBe(16);
    expect([...declared].some((o) => o.startsWith("util/"))).toBe(false);
    // The Makefile over-declares: app1/report.c and app2/table.c do not include calc.h. gcc's own
    // dependency output says which sources really include it; only those must re-execute, the rest are cache hits.
    const includers = new Set<string>();
    for (const obj of declared) {
      const deps = await execa("gcc", ["-MM", "-Ilib", "-Iutil", obj.replace(/\.o$/, ".c")], { cwd: tree, env: cleanEnv(), extendEnv: false });
      if (/(^|\s)lib\/calc\.h(\s|$)/.test(deps.stdout.replace(/\\\n/g, " "))) includers.add(obj);
    }
    expect(includers.size).toBe(14);

    const objects = listFiles(tree, (r) => r.endsWith(".o"));
    const before = snapshot(tree, objects);
    const b = await orionBuild(tree, orion);
    expectOk(b);
    const out = outcomes(b.events);
    const compiles = (labels: string[]) => labels.map(objectPath).filter((x): x is string => !!x);
    // Every compile make would run is an action: executed when its source includes calc.h, a cache hit otherwise.
    expect(new Set([...compiles(out.executed), ...compiles(out.cached)])).toEqual(declared);
    expect(new Set(compiles(out.executed))).toEqual(includers);
    expect(compiles(out.executed)).toHaveLength(includers.size);
    // An unused declaration at the end of the header leaves the objects as they were; then nothing downstream runs either.
    if (differingFiles(tree, before).length === 0) expect(b.summary.executed).toBe(includers.size);
    expect(await runProgram(join(tree, "app2/app2"))).toBe(ref.stdout.get("app2/app2"));
    expect((await runMake(tree, ["-q"])).exitCode).toBe(0);
  });

  it("7. --no-cache on a fresh copy with a warm cache executes every action", async () => {
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, orion, ["--no-cache"]);
    expectOk(b);
    expect(b.summary.actions).toBe(MULTI_C_ACTIONS);
    expect(b.summary.executed).toBe(b.summary.actions);
    expect(b.summary.cacheHits).toBe(0);
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
  });
});

describe("multi-c: --jobs 1, then a corrupted CAS", () => {
  const tree = join(scratch.root, "multi-c-serial");
  const cacheDir = join(scratch.root, "cache-serial");
  const orion: OrionEnv = { cacheDir, configHome: scratch.configHome, driver: "graph" };
  let expectedStdout: Map<string, string>;
  let serialOutputs: Map<string, Buffer>;

  it("12. --jobs 1 builds multi-c correctly, one tool at a time", async () => {
    copyFixture("multi-c", tree);
    const logFile = join(scratch.root, "serial.log");
    const b = await orionBuild(tree, { ...orion, env: { ORION_LOG_LEVEL: "debug", ORION_LOG_FILE: logFile } }, ["--jobs", "1"]);
    expectOk(b);
    expect(b.summary.actions).toBe(MULTI_C_ACTIONS);
    expect(b.summary.executed).toBe(MULTI_C_ACTIONS);
    // --jobs caps the tools running at once, as make -j does: a slot is given back when the compiler
    // exits, so the next action may start while the previous one's outputs are still being stored
    // (the events may show several actions in flight). The executor's log, written in the order things
    // happen, shows the tools themselves never overlap.
    let running = 0;
    let most = 0;
    let tools = 0;
    for (const line of readFileSync(logFile, "utf8").split("\n")) {
      if (line.includes('"msg":"tool started"')) (most = Math.max(most, ++running)), tools++;
      if (line.includes('"msg":"tool exited"')) running--;
    }
    expect(tools).toBe(MULTI_C_ACTIONS);
    expect(most).toBe(1);
    expectedStdout = await programOutputs(tree, MULTI_C_PROGRAMS);
    expect(lines(expectedStdout.get("app1/app1")!)).toContain("add(40,2) = 42");
    expect(lines(expectedStdout.get("app2/app2")!).length).toBeGreaterThan(5);
    // Compared against plain make by the first describe; here keep the bytes for the corruption check.
    serialOutputs = snapshot(tree, buildOutputs(tree, MULTI_C_PROGRAMS));
    expect(serialOutputs.size).toBe(MULTI_C_ACTIONS);
  });

  it("13. corrupt blobs in the CAS are treated as missing: a fresh copy still builds the right outputs", async () => {
    expect(serialOutputs, "needs the --jobs 1 build").toBeDefined();
    const blobs = join(cacheDir, "cas", "blobs");
    const files = listFiles(blobs);
    expect(files.length).toBeGreaterThan(0);
    for (const rel of files) {
      const p = join(blobs, rel);
      const size = statSync(p).size;
      chmodSync(p, 0o644);
      // Same size, different content (overwritten in place, as disk corruption would be).
      writeFileSync(p, Buffer.alloc(size, 0x5a));
    }
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.actions).toBe(MULTI_C_ACTIONS);
    expect(differingFiles(tree, serialOutputs), "outputs that differ from the uncorrupted build").toEqual([]);
    expect(await programOutputs(tree, MULTI_C_PROGRAMS)).toEqual(expectedStdout);
  });
});

describe("gen-header: a generator run as a host step", () => {
  const tree = join(scratch.root, "gen-header");
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-gen-header"), configHome: scratch.configHome };

  it("8. cold build runs the generator as a host step; a new VERSION rebuilds main.o and shows up in the program", async () => {
    const ref = await makeReference("gen-header", tree, ["hello"]);
    const version = readFileSync(join(FIXTURES, "gen-header", "VERSION"), "utf8").trim();
    expect(ref.stdout.get("hello")).toBe(`hello, orion (version ${version})`);

    copyFixture("gen-header", tree);
    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.hostSteps).toBeGreaterThanOrEqual(1);
    const host = b.events.filter((e) => e.type === "host-step");
    expect(host.map((e) => e.state)).toContain("started");
    expect(host.map((e) => e.state)).toContain("finished");
    expect(host.some((e) => String(e.cmd).includes("gen-version.sh"))).toBe(true);
    expect(existsSync(join(tree, "include/version.h"))).toBe(true);
    expect(await runProgram(join(tree, "hello"))).toBe(ref.stdout.get("hello"));

    writeFileSync(join(tree, "VERSION"), "9.8.7-e2e\n");
    const again = await orionBuild(tree, orion);
    expectOk(again);
    expect(outcomes(again.events).executed).toContain("CC main.o");
    expect(outcomes(again.events).executed).not.toContain("CC greet.o");
    expect(await runProgram(join(tree, "hello"))).toBe("hello, orion (version 9.8.7-e2e)");
  });
});

describe("cxx", () => {
  it("9. builds the C++ program, which prints what make's build prints", async () => {
    const tree = join(scratch.root, "cxx");
    const ref = await makeReference("cxx", tree, ["geometry"]);
    copyFixture("cxx", tree);
    const b = await orionBuild(tree, { cacheDir: join(scratch.root, "cache-cxx"), configHome: scratch.configHome });
    expectOk(b);
    expect(b.summary.actions).toBe(5);
    expect(b.summary.executed).toBe(5);
    expect(await runProgram(join(tree, "geometry"))).toBe(ref.stdout.get("geometry"));
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
  });
});

describe("compile-error", () => {
  it("10. a compile error: exit 1, gcc's diagnostic on stderr, failed ≥ 1, no bad.o in the tree", async () => {
    const tree = copyFixture("compile-error", join(scratch.root, "compile-error"));
    const b = await orionBuild(tree, { cacheDir: join(scratch.root, "cache-compile-error"), configHome: scratch.configHome });
    expect(b.exitCode, b.stderr).toBe(1);
    expect(b.stderr).toMatch(/bad\.c:\d+:\d+: error:/);
    expect(b.summary.failed).toBeGreaterThanOrEqual(1);
    expect(outcomes(b.events).failed).toContain("CC bad.o");
    expect(existsSync(join(tree, "bad.o"))).toBe(false);
    expect(existsSync(join(tree, "broken"))).toBe(false);
    rmSync(tree, { recursive: true, force: true });
  });
});

describe("trees with awkward contents", () => {
  it("15. a symlink loop and a symlink out of the tree do not stop the build", async () => {
    const tree = copyFixture("gen-header", join(scratch.root, "symlinks"));
    symlinkSync("loop-b", join(tree, "loop-a"));
    symlinkSync("loop-a", join(tree, "loop-b"));
    symlinkSync("/etc/hostname", join(tree, "outside"));
    const b = await orionBuild(tree, { cacheDir: join(scratch.root, "cache-symlinks"), configHome: scratch.configHome });
    expectOk(b);
    expect(await runProgram(join(tree, "hello"))).toMatch(/^hello, orion/);
  });

  it("16. a new header that shadows an included one is a cache miss, never a stale hit", async () => {
    // gen-header compiles with -Iinclude: main.c's "include/greet.h" is found through the source's own dir first
    // for quoted includes. A greet.h dropped next to main.c shadows include/greet.h.
    const tree = copyFixture("gen-header", join(scratch.root, "shadow"));
    const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-shadow"), configHome: scratch.configHome };
    expectOk(await orionBuild(tree, orion));
    const fresh = copyFixture("gen-header", join(scratch.root, "shadow"));
    const greet = readFileSync(join(fresh, "include/greet.h"), "utf8");
    writeFileSync(join(fresh, "greet.h"), greet + "\n#define ORION_SHADOWED 1\n");
    const b = await orionBuild(fresh, orion);
    expectOk(b);
    const executed = outcomes(b.events).executed;
    expect(executed).toContain("CC main.o");
    expect(executed).toContain("CC greet.o");
  });
});
