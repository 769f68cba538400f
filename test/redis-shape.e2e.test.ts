// End-to-end: the real `orion build` on fixtures/redis-shape, a small tree in the shape of Redis 7.0.15's build (its
// README lists what it imitates), against plain make at the same path: cold, a fresh copy over the same cache, a touched
// header, an edited header, an edited source. Assertions are on the --json summary and events and on files, so they keep
// their meaning whichever way host steps and configure-written sub-makes come to be handled.
import { readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findProgram } from "../src/core/programs.js";
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
/** Host steps are traced (and cached as whole steps) only where strace is installed (`make install` puts it there). */
const HAVE_STRACE = findProgram("strace", process.cwd()) !== undefined;
/**
 * The actions of a fresh tree's graph outside deps/probe-lib: 8 compiles, 2 archives, 2 links. probe-lib's own
 * compiles and archive are not among them: its Makefile is written by its ./configure, so the dry run finds no
 * makefile there and `cd probe-lib && make ... lib/libprobe.a` is kept as one host step.
 */
const ACTIONS = [...SRC_COMPILES, ...MINILIB_COMPILES, "AR deps/minilib/libminilib.a", "AR src/libshape.a", ...LINKS].sort();


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
  const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome, driver: "graph" };
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
    // Every file make writes is there, byte-identical to make's: objects (those compiled without -o too: dag-extract
    // names their object, so they run in the shared context like the others), archives, programs, and what was
    // written in the real tree (release.h, configure's files, probe-lib's objects).
    expect(outputsOf(tree)).toEqual([...ref.outputs.keys()]);
    expect(differingFiles(tree, ref.outputs), "outputs that differ from make's").toEqual([]);
    expect(await compilesMakeWouldRun(tree), "make -n after the build").toEqual([]);
  });

  it("2. a second build of the same tree runs no action", async () => {
    const again = await orionBuild(tree, orion);
    expectOk(again);
    expect(again.summary.executed).toBe(0);
    expect(await programs(tree)).toEqual(ref.stdout);
  });

  it("3. a fresh copy at the same path over the same cache executes no action: every one is a cache hit", async () => {
    copyFixture(FIXTURE, tree);
    fresh = await orionBuild(tree, orion);
    expectOk(fresh);
    expect(fresh.summary.actions).toBe(cold.summary.actions);
    expect(fresh.summary.hostSteps).toBe(cold.summary.hostSteps);
    const out = outcomes(fresh.events);
    for (const label of [...SRC_COMPILES, "AR src/libshape.a"]) expect(out.cached).toContain(label);
    expect(out.executed).toEqual([]);
    expect(fresh.summary.cacheHits).toBe(fresh.summary.actions);
    expect(await programs(tree)).toEqual(ref.stdout);
    expect(await compilesMakeWouldRun(tree)).toEqual([]);
  });

  // probe-lib's Makefile is written by its ./configure, so the dry run of a fresh tree cannot see its compiles:
  // configure and `cd probe-lib && make ... lib/libprobe.a` are host steps. Traced on the first build, both are
  // restored from the step cache on a fresh copy — not run — and what they restore is what make builds.
  it.skipIf(!HAVE_STRACE)("3c. a fresh copy: configure and probe-lib's configure-written sub-make are restored from the step cache", () => {
    expect(fresh, "needs the fresh-copy build").toBeDefined();
    const restored = fresh.events.filter((e) => e.type === "host-step" && e.state === "finished" && e.cached).map((e) => String(e.cmd));
    expect(restored.some((c) => c.includes("./configure --with-prefix=probe_"))).toBe(true);
    expect(restored.some((c) => c.includes("lib/libprobe.a"))).toBe(true);
    expect(fresh.summary.hostStepsCached).toBeGreaterThanOrEqual(2);
    expect(differingFiles(tree, new Map([...ref.outputs].filter(([rel]) => rel.startsWith("deps/probe-lib/"))))).toEqual([]);
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
