// End-to-end: the real `orion build` on fixtures/redis-shape, a small tree in the shape of Redis 7.0.15's build (its
// README lists what it imitates), against plain make at the same path: cold, a fresh copy over the same cache, a touched
// header, an edited header, an edited source. Assertions are on the --json summary and events and on files, so they keep
// their meaning whichever way host steps and configure-written sub-makes come to be handled.
import { readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  copyFixture,
  differingFiles,
  expectBuildOk as expectOk,
  lines,
  listFiles,
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

const scratch = new Scratch("redis-shape");
afterAll(() => scratch.cleanup());

const FIXTURE = "redis-shape";
const PROGRAMS = ["src/shape-server", "src/shape-cli", "src/shape-sentinel"];
/** Files no compile writes: release.h (src/mkreleasehdr.sh), probe-lib's Makefile and config header (its ./configure). */
const GENERATED = ["src/release.h", "deps/probe-lib/Makefile", "deps/probe-lib/include/probe_config.h"];

const SRC_COMPILES = ["CC src/cli.o", "CC src/dict.o", "CC src/release.o", "CC src/server.o", "CC src/util.o"];
/** hiredis's shape: `cc -std=c99 -c ... alloc.c`, no -o. */
const MINILIB_COMPILES = ["CC deps/minilib/alloc.o", "CC deps/minilib/list.o", "CC deps/minilib/strbuf.o"];
const LINKS = ["LINK src/shape-cli", "LINK src/shape-server"];
/**
 * The actions of a fresh tree's graph outside deps/probe-lib: 8 compiles, 2 archives, 2 links. probe-lib's own
 * compiles and archive are not among them: its Makefile is written by its ./configure, so the dry run finds no
 * makefile there and `cd probe-lib && make ... lib/libprobe.a` is kept as one host step.
 */
const ACTIONS = [...SRC_COMPILES, ...MINILIB_COMPILES, "AR deps/minilib/libminilib.a", "AR src/libshape.a", ...LINKS].sort();
/** What probe-lib's sub-make runs: actions only if Orion looks inside the configure-written Makefile. */
const PROBE_LIB_ACTIONS = ["AR deps/probe-lib/lib/libprobe.a", "CC deps/probe-lib/src/bits.o", "CC deps/probe-lib/src/probe.o"];

/**
 * Outputs that differ from make's today, and why: a compile without -o (deps/minilib, like Redis's hiredis, linenoise
 * and hdr_histogram: 9 compiles) is classified as a compile by dag-extract, but src/head/prepare.ts parses it without
 * `implicitOutput`, so it is not cacheable, and the executor's shared-context path needs an explicit -o, so it runs in a
 * sandbox at a per-run path that gcc records (-g) as DW_AT_comp_dir. Its objects, libminilib.a, and the programs that
 * link it (shape-sentinel is an `install` copy of shape-server) carry that path.
 */
const DIFFER_BY_SANDBOX_PATH = [
  "deps/minilib/alloc.o",
  "deps/minilib/list.o",
  "deps/minilib/strbuf.o",
  "deps/minilib/libminilib.a",
  ...PROGRAMS,
];

function outputsOf(dir: string): string[] {
  return listFiles(dir, (r) => /\.(o|a|d)$/.test(r) || PROGRAMS.includes(r) || GENERATED.includes(r));
}

function withoutProbeLib(labels: string[]): string[] {
  return labels.filter((l) => !l.includes("deps/probe-lib/"));
}

function programs(dir: string): Promise<Map<string, string>> {
  return programOutputs(dir, PROGRAMS);
}

/** The objects make -n would compile now (after a build, none). */
async function compilesMakeWouldRun(dir: string): Promise<string[]> {
  const dry = await runMake(dir, ["-n"]);
  expect(dry.exitCode, `${dry.command}\n${dry.stderr}`).toBe(0);
  return lines(dry.stdout).filter((l) => / -c /.test(l));
}

/** The src objects whose -MMD depfile names `header` (src/<header>): what make recompiles when it changes. */
function srcIncluders(dir: string, header: string): string[] {
  const src = join(dir, "src");
  return readdirSync(src)
    .filter((f) => f.endsWith(".d"))
    .filter((f) => readFileSync(join(src, f), "utf8").replace(/\\\n/g, " ").split(/\s+/).includes(header))
    .map((f) => `CC src/${f.replace(/\.d$/, ".o")}`)
    .sort();
}

describe("redis-shape: a tree built like Redis 7.0.15, against make at the same path", () => {
  // One absolute path for make's build and Orion's: the objects are built with -g and embed it.
  const tree = join(scratch.root, "tree");
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };
  let ref: { outputs: Map<string, Buffer>; stdout: Map<string, string> };
  let cold: OrionBuild;
  let fresh: OrionBuild;

  beforeAll(async () => {
    copyFixture(FIXTURE, tree);
    const r = await runMake(tree, ["-j2"]);
    if (r.exitCode !== 0) throw new Error(`${r.command} failed (${r.exitCode}): ${r.stderr}`);
    ref = { outputs: snapshot(tree, outputsOf(tree)), stdout: await programs(tree) };
    rmSync(tree, { recursive: true, force: true });
  });

  it("make's own build: what the programs print, and which files it writes", () => {
    const server = lines(ref.stdout.get("src/shape-server")!);
    expect(server[0]).toMatch(/^shape-server 1\.4\.2 \(release \d+\)$/);
    expect(server.slice(1)).toEqual([
      "dict: 3 entries, sum 60, scaled by 3: 180",
      'minilib: "hello, shape" (12 bytes)',
      "probe-lib: prefix probe_, stdint.h yes, popcount(0xff) = 8",
    ]);
    const cli = lines(ref.stdout.get("src/shape-cli")!);
    // The cli includes the generated release.h itself; the server gets it through release.o.
    expect(cli[0]).toBe(server[0]!.replace("shape-server", "shape-cli"));
    expect(cli.slice(1)).toEqual(["list: 4 items, sum 30", "dict slots: 16"]);
    expect(ref.stdout.get("src/shape-sentinel")).toBe(ref.stdout.get("src/shape-server"));
    const names = [...ref.outputs.keys()];
    expect(names.filter((n) => n.endsWith(".o"))).toHaveLength(5 + 3 + 2);
    expect(names.filter((n) => n.endsWith(".a")).sort()).toEqual(["deps/minilib/libminilib.a", "deps/probe-lib/lib/libprobe.a", "src/libshape.a"]);
    for (const g of GENERATED) expect(names).toContain(g);
  });

  it("1. cold: every action executes, configure and probe-lib's make run as host steps, the programs print what make's print", async () => {
    copyFixture(FIXTURE, tree);
    cold = await orionBuild(tree, orion);
    expectOk(cold);
    expect(cold.summary.executed).toBe(cold.summary.actions);
    expect(cold.summary.cacheHits).toBe(0);
    const out = outcomes(cold.events);
    expect(withoutProbeLib(out.executed)).toEqual(ACTIONS);
    const hostCmds = cold.events.filter((e) => e.type === "host-step" && e.state === "finished").map((e) => String(e.cmd));
    expect(hostCmds.some((c) => c.includes("./configure --with-prefix=probe_"))).toBe(true);
    expect(cold.summary.hostSteps).toBeGreaterThanOrEqual(2);

    expect(await programs(tree)).toEqual(ref.stdout);
    // Every file make writes is there; the compiles with an explicit -o, the archives over them and everything
    // written in the real tree (release.h, configure's files, probe-lib's objects) are byte-identical to make's.
    expect(outputsOf(tree)).toEqual([...ref.outputs.keys()]);
    const comparable = new Map([...ref.outputs].filter(([rel]) => !DIFFER_BY_SANDBOX_PATH.includes(rel)));
    expect(comparable.size).toBe(ref.outputs.size - DIFFER_BY_SANDBOX_PATH.length);
    expect(differingFiles(tree, comparable), "outputs that differ from make's").toEqual([]);
    expect(await compilesMakeWouldRun(tree), "make -n after the build").toEqual([]);
  });

  // Fails today: see DIFFER_BY_SANDBOX_PATH. When compiles without -o run like the others, this passes: drop the list.
  it.fails("1b. cold: every output is byte-identical to make's, deps/minilib's objects and the programs included", () => {
    expect(cold, "needs the cold build").toBeDefined();
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
  });

  it("2. a second build of the same tree runs no action", async () => {
    const again = await orionBuild(tree, orion);
    expectOk(again);
    expect(again.summary.executed).toBe(0);
    expect(await programs(tree)).toEqual(ref.stdout);
  });

  it("3. a fresh copy at the same path over the same cache: every compile with an explicit -o, and libshape.a over them, is a cache hit", async () => {
    copyFixture(FIXTURE, tree);
    fresh = await orionBuild(tree, orion);
    expectOk(fresh);
    expect(fresh.summary.actions).toBe(cold.summary.actions);
    expect(fresh.summary.hostSteps).toBe(cold.summary.hostSteps);
    const out = outcomes(fresh.events);
    for (const label of [...SRC_COMPILES, "AR src/libshape.a"]) expect(out.cached).toContain(label);
    // What executes today is at most deps/minilib's no -o compiles and what depends on their objects (3b says why).
    const dependsOnMinilibObjects = [...MINILIB_COMPILES, "AR deps/minilib/libminilib.a", ...LINKS];
    expect(out.executed.filter((l) => !dependsOnMinilibObjects.includes(l)), "executed beyond minilib's fallout").toEqual([]);
    expect(fresh.summary.cacheHits).toBeGreaterThanOrEqual(SRC_COMPILES.length + 1);
    expect(await programs(tree)).toEqual(ref.stdout);
    expect(await compilesMakeWouldRun(tree)).toEqual([]);
  });

  // Fails today: deps/minilib's compiles have no -o and are not cacheable (see DIFFER_BY_SANDBOX_PATH); their objects
  // come out different each time, so libminilib.a and both links re-execute too (6 executed, 6 hits).
  it.fails("3b. a fresh copy at the same path over the same cache executes no action at all", () => {
    expect(fresh, "needs the fresh-copy build").toBeDefined();
    expect(outcomes(fresh.events).executed).toEqual([]);
    expect(fresh.summary.executed).toBe(0);
    expect(fresh.summary.cacheHits).toBe(fresh.summary.actions);
  });

  // Fails today: probe-lib's Makefile is written by its ./configure, so the dry run of a fresh tree cannot see its
  // compiles; `cd probe-lib && make ... lib/libprobe.a` runs as one uncached host step and recompiles both sources in
  // every fresh copy. Passes once Orion expands that sub-make into actions after configure has run (then probe-lib's
  // compiles and archive are cache hits here). If it is instead cached as one whole step, rewrite this for that step.
  it.fails("3c. a fresh copy: the compiles and the archive of probe-lib's configure-written Makefile are cache hits", () => {
    expect(fresh, "needs the fresh-copy build").toBeDefined();
    const cached = outcomes(fresh.events).cached;
    for (const label of PROBE_LIB_ACTIONS) expect(cached).toContain(label);
    expect(fresh.summary.cacheHits).toBeGreaterThanOrEqual(ACTIONS.length + PROBE_LIB_ACTIONS.length);
  });

  it("4. touching src/util.h without changing it executes nothing: its includers are cache hits", async () => {
    const includers = srcIncluders(tree, "util.h");
    expect(includers).toEqual(["CC src/cli.o", "CC src/server.o", "CC src/util.o"]);
    const now = new Date();
    utimesSync(join(tree, "src/util.h"), now, now);
    expect((await compilesMakeWouldRun(tree)).length, "precondition: make would recompile the includers").toBe(includers.length);

    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(b.summary.executed).toBe(0);
    const out = outcomes(b.events);
    expect(out.cached.filter((l) => l.startsWith("CC "))).toEqual(includers);
    expect(await programs(tree)).toEqual(ref.stdout);
    expect(await compilesMakeWouldRun(tree)).toEqual([]);
  });

  it("5. a content edit of src/util.h re-executes exactly the objects that include it, then libshape.a and the links", async () => {
    const header = join(tree, "src/util.h");
    const text = readFileSync(header, "utf8");
    expect(text).toContain("#define SHAPE_SCALE 3");
    writeFileSync(header, text.replace("#define SHAPE_SCALE 3", "#define SHAPE_SCALE 5"));
    const includers = srcIncluders(tree, "util.h");

    const b = await orionBuild(tree, orion);
    expectOk(b);
    const out = outcomes(b.events);
    expect(out.executed.filter((l) => l.startsWith("CC "))).toEqual(includers);
    expect(out.executed).toEqual([...includers, "AR src/libshape.a", ...LINKS].sort());
    expect(b.summary.executed).toBe(includers.length + 1 + LINKS.length);
    expect(await runProgram(join(tree, "src/shape-server"))).toContain("dict: 3 entries, sum 60, scaled by 5: 300");
    expect(await runProgram(join(tree, "src/shape-cli"))).toContain("list: 4 items, sum 50");
    expect(await compilesMakeWouldRun(tree)).toEqual([]);
  });

  it("6. an edit of one source, src/dict.c, re-executes its compile, libshape.a and the two links, nothing else", async () => {
    const source = join(tree, "src/dict.c");
    const text = readFileSync(source, "utf8");
    expect(text).toContain("unsigned h = 5381;");
    writeFileSync(source, text.replace("unsigned h = 5381;", "unsigned h = 5387;"));
    const before = await programs(tree);

    const b = await orionBuild(tree, orion);
    expectOk(b);
    expect(outcomes(b.events).executed).toEqual(["AR src/libshape.a", "CC src/dict.o", ...LINKS].sort());
    expect(b.summary.executed).toBe(1 + 1 + LINKS.length);
    // Another hash seed moves entries to other slots; what the programs print stays the same.
    expect(await programs(tree)).toEqual(before);
    expect(await compilesMakeWouldRun(tree)).toEqual([]);
  });
});
