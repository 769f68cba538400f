// End-to-end: `orion cc` as a drop-in CC for real make builds — byte-identical objects, depfiles and diagnostics, hits and misses exactly where the inputs say, uncached calls behaving as the compiler does, and masquerade links.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildOutputs,
  cleanEnv,
  copyFixture,
  differingFiles,
  makeReference,
  ORION_BIN,
  REPO,
  runOrion,
  runProgram,
  Scratch,
  snapshot,
} from "./helpers.js";
import { CcStats, type CcCounts } from "../src/cc/stats.js";

const scratch = new Scratch("cc");
afterAll(() => scratch.cleanup());

type Counts = { hits: number; misses: number; uncacheable: number; localCompiles: number; remoteCompiles: number; fallbacks: number; bytesStored: number };

/** One cache dir (and empty config home) per test area, so counters are exact. */
function orionEnv(name: string): { cacheDir: string; configHome: string } {
  return { cacheDir: join(scratch.root, `cache-${name}`), configHome: scratch.configHome };
}

function envFor(o: { cacheDir: string; configHome: string }, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return cleanEnv({ ORION_CACHE_DIR: o.cacheDir, XDG_CONFIG_HOME: o.configHome, XDG_CACHE_HOME: join(scratch.root, "xdg-cache"), ...extra });
}

/** The cc counters, read straight from the cache dir (a CLI start per read would double this file's runtime; one test checks `orion cache stats`). */
async function stats(o: { cacheDir: string; configHome: string }): Promise<CcCounts> {
  return CcStats.readCounts(o.cacheDir);
}

/** `orion cache stats --json`, the user's view of the same counters. */
async function cliStats(o: { cacheDir: string; configHome: string }): Promise<Counts> {
  const r = await runOrion(["cache", "stats", "--json"], o);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Counts;
}

function delta(before: CcCounts, after: CcCounts): CcCounts {
  const d = {} as CcCounts;
  for (const k of ["hits", "misses", "uncacheable", "localCompiles", "remoteCompiles", "fallbacks"] as const) d[k] = after[k] - before[k];
  return d;
}

/** `make -j2` in dir with CC pointing at the Node path of `orion cc` (bypassing any native client, so this tests the in-process path). */
async function makeOrion(dir: string, o: { cacheDir: string; configHome: string }, args: string[] = [], compiler = "gcc", extraEnv: Record<string, string> = {}) {
  const r = await execa("make", ["-C", dir, "-j2", `CC=${process.execPath} ${ORION_BIN} cc ${compiler}`, ...args], {
    env: envFor(o, extraEnv),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    timeout: 50_000,
  });
  expect(r.exitCode, `make failed (${r.exitCode}):\n${r.stderr}\n--- stdout:\n${r.stdout}`).toBe(0);
  return r;
}

interface Raw {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** `orion cc ARGS` in cwd, bytes in and out. */
async function orionCc(cwd: string, o: { cacheDir: string; configHome: string }, args: string[], input?: string): Promise<Raw> {
  const r = await execa(process.execPath, [ORION_BIN, "cc", ...args], {
    cwd,
    env: envFor(o),
    extendEnv: false,
    reject: false,
    encoding: "buffer",
    ...(input === undefined ? { stdin: "ignore" as const } : { input }),
    timeout: 30_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
}

/** The compiler itself, for the reference answer. */
async function direct(cwd: string, args: string[], input?: string): Promise<Raw> {
  const [exe, ...rest] = args;
  const r = await execa(exe!, rest, {
    cwd,
    env: cleanEnv(),
    extendEnv: false,
    reject: false,
    encoding: "buffer",
    ...(input === undefined ? { stdin: "ignore" as const } : { input }),
  });
  return { exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
}

const MULTI_C_PROGRAMS = ["app1/app1", "app2/app2"];
const MULTI_C_COMPILES = 28;
const APP1_MAIN = ["gcc", "-O2", "-g", "-Wall", "-Ilib", "-Iutil", "-c", "app1/main.c", "-o", "app1/main.o"];

describe("orion cc with make on multi-c", () => {
  const o = orionEnv("multi-c");
  const dir = join(scratch.root, "multi-c");
  let reference: Awaited<ReturnType<typeof makeReference>>;

  it("a cold build gives objects, archives and programs byte-identical to plain make's; links run uncached", async () => {
    reference = await makeReference("multi-c", dir, MULTI_C_PROGRAMS);
    copyFixture("multi-c", dir);
    const before = await stats(o);
    await makeOrion(dir, o);
    expect(differingFiles(dir, reference.outputs)).toEqual([]);
    expect(buildOutputs(dir, MULTI_C_PROGRAMS).length).toBe(reference.outputs.size);
    for (const p of MULTI_C_PROGRAMS) expect(await runProgram(join(dir, p))).toBe(reference.stdout.get(p));
    const d = delta(before, await stats(o));
    expect(d).toEqual({ hits: 0, misses: MULTI_C_COMPILES, uncacheable: 2, localCompiles: MULTI_C_COMPILES, remoteCompiles: 0, fallbacks: 0 });
    const cli = await cliStats(o);
    expect(cli).toMatchObject({ ...(await stats(o)), remoteCompiles: 0 });
    expect(cli.bytesStored).toBeGreaterThan(0);
  });

  it("a second build in a fresh copy at the same path is all hits, with identical outputs; ORION_RECORD logs every call", async () => {
    copyFixture("multi-c", dir);
    const before = await stats(o);
    const recordFile = join(scratch.root, "multi-c-calls.ndjson");
    await makeOrion(dir, o, [], "gcc", { ORION_RECORD: recordFile });
    expect(differingFiles(dir, reference.outputs)).toEqual([]);
    expect(delta(before, await stats(o))).toEqual({ hits: MULTI_C_COMPILES, misses: 0, uncacheable: 2, localCompiles: 0, remoteCompiles: 0, fallbacks: 0 });

    type Rec = { type: string; kind: string; cwd: string; argv: string[]; reads: string[]; writes: string[]; exitCode: number; outcome: string; ms: number };
    const calls = readFileSync(recordFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Rec);
    expect(calls.length).toBe(MULTI_C_COMPILES + 2);
    const compiles = calls.filter((c) => c.kind === "compile");
    expect(compiles.length).toBe(MULTI_C_COMPILES);
    expect(compiles.every((c) => c.outcome === "hit" && c.exitCode === 0 && c.ms >= 0)).toBe(true);
    const addC = compiles.find((c) => c.argv.includes("lib/add.c"))!;
    expect(addC.cwd).toBe(dir);
    expect(addC.reads).toEqual(expect.arrayContaining([join(dir, "lib/add.c"), join(dir, "lib/calc.h")]));
    expect(addC.writes).toContain(join(dir, "lib/add.o"));
    const links = calls.filter((c) => c.kind === "link");
    expect(links.map((c) => c.writes[0]).sort()).toEqual(MULTI_C_PROGRAMS.map((p) => join(dir, p)).sort());
    expect(links.every((c) => c.outcome === "uncacheable" && c.reads.some((r) => r.endsWith(".a")))).toBe(true);
  });

  /**
   * A copy of the launcher with no native client beside it, so a masquerade link runs the Node
   * `orion cc` (this checkout's launcher hands the call to native/build/orion-cc when that is built).
   */
  function nodeOnlyLauncher(): string {
    const home = join(scratch.root, "orion-home");
    mkdirSync(join(home, "bin"), { recursive: true });
    copyFileSync(join(REPO, "bin", "orion"), join(home, "bin", "orion"));
    chmodSync(join(home, "bin", "orion"), 0o755);
    symlinkSync(join(REPO, "dist"), join(home, "dist"));
    writeFileSync(join(home, "package.json"), JSON.stringify({ type: "module" }));
    return join(home, "bin", "orion");
  }

  it("masquerade: PATH=<dir>:$PATH make builds multi-c through orion cc — hits on this (second) build, identical outputs", async () => {
    const launcher = nodeOnlyLauncher();
    const masq = join(scratch.root, "masq");
    const m = await execa(process.execPath, [launcher, "masquerade", masq], { env: envFor(o), extendEnv: false, reject: false });
    expect(m.exitCode, m.stderr).toBe(0);
    for (const name of ["gcc", "cc", "g++", "c++"]) expect(readFileSync(join(masq, name)).equals(readFileSync(launcher))).toBe(true);
    // Run again: existing links are refreshed, not an error.
    expect((await execa(process.execPath, [launcher, "masquerade", masq], { env: envFor(o), extendEnv: false, reject: false })).exitCode).toBe(0);

    const env = envFor(o, { PATH: `${masq}:${process.env.PATH}` });
    // Invoked under a link's name (argv[1]), orion is that compiler — found further down PATH, not itself.
    const v = await execa(process.execPath, [join(masq, "gcc"), "--version"], { env, extendEnv: false, reject: false });
    expect(v.stdout.split("\n")[0]).toBe((await execa("gcc", ["--version"])).stdout.split("\n")[0]);

    // The cold build above filled this cache with the same compiles (make's CC=gcc resolves to the same gcc), so a
    // masqueraded build of a fresh copy at the same path must be all hits.
    copyFixture("multi-c", dir);
    const before = await stats(o);
    const r = await execa("make", ["-C", dir, "-j2"], { env, extendEnv: false, reject: false, stdin: "ignore", timeout: 50_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(delta(before, await stats(o))).toEqual({ hits: MULTI_C_COMPILES, misses: 0, uncacheable: 2, localCompiles: 0, remoteCompiles: 0, fallbacks: 0 });
    expect(differingFiles(dir, reference.outputs)).toEqual([]);
    for (const p of MULTI_C_PROGRAMS) expect(await runProgram(join(dir, p))).toBe(reference.stdout.get(p));
  });

  it("a header edit misses exactly the compiles that include it", async () => {
    // app1/report.h is included by app1/main.c and app1/report.c, and make rebuilds just those two (plus the link).
    writeFileSync(join(dir, "app1/report.h"), readFileSync(join(dir, "app1/report.h"), "utf8") + "\n/* edited */\n");
    const before = await stats(o);
    await makeOrion(dir, o);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 2, uncacheable: 1 });
    // A compile that does not include it still hits.
    const r = await orionCc(dir, o, ["gcc", "-O2", "-g", "-Wall", "-Ilib", "-Iutil", "-c", "app2/main.c", "-o", "app2/main.o"]);
    expect(r.exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 1, misses: 2 });
  });

  it("a new header that shadows an included one misses", async () => {
    let before = await stats(o);
    expect((await orionCc(dir, o, APP1_MAIN)).exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 1, misses: 0 });
    // "calc.h" is found in lib/ through -Ilib; the same name next to the source comes first for a quoted include.
    copyFileSync(join(dir, "lib/calc.h"), join(dir, "app1/calc.h"));
    before = await stats(o);
    expect((await orionCc(dir, o, APP1_MAIN)).exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 1 });
  });

  it("another compiler (cc vs gcc) misses, and so does a -D change", async () => {
    const before = await stats(o);
    const asCc = await orionCc(dir, o, ["cc", ...APP1_MAIN.slice(1)]);
    expect(asCc.exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 1 });
    expect((await orionCc(dir, o, ["cc", ...APP1_MAIN.slice(1)])).exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 1, misses: 1 });
    expect((await orionCc(dir, o, ["gcc", "-DEXTRA=1", ...APP1_MAIN.slice(1)])).exitCode).toBe(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 1, misses: 2 });
  });

  it("-MD: the depfile is identical to gcc's own, cold and warm, and so is the object", async () => {
    const args = ["-O2", "-Wall", "-MD", "-Ilib", "-Iutil", "-c", "app2/main.c", "-o", "app2/main-md.o"];
    const g = await direct(dir, ["gcc", ...args]);
    expect(g.exitCode).toBe(0);
    const want = snapshot(dir, ["app2/main-md.d", "app2/main-md.o"]);
    expect(want.get("app2/main-md.d")!.toString()).toContain("app2/table.h");
    for (const expected of [{ hits: 0, misses: 1 }, { hits: 1, misses: 0 }]) {
      const before = await stats(o);
      const r = await orionCc(dir, o, ["gcc", ...args]);
      expect(r.exitCode).toBe(0);
      expect(differingFiles(dir, want)).toEqual([]);
      expect(delta(before, await stats(o))).toMatchObject(expected);
    }
    // A warm hit writes the depfile again when it is gone.
    writeFileSync(join(dir, "app2/main-md.d"), "stale\n");
    expect((await orionCc(dir, o, ["gcc", ...args])).exitCode).toBe(0);
    expect(differingFiles(dir, want)).toEqual([]);
  });
});

describe("orion cc on calls it does not cache", () => {
  const o = orionEnv("uncached");
  const dir = copyFixture("compile-error", join(scratch.root, "compile-error"));

  it("a compile error gives gcc's exit code and stderr bytes, and is never cached", async () => {
    const args = ["gcc", "-O2", "-Wall", "-c", "bad.c", "-o", "bad.o"];
    const g = await direct(dir, args);
    expect(g.exitCode).not.toBe(0);
    const before = await stats(o);
    for (let i = 1; i <= 2; i++) {
      const r = await orionCc(dir, o, args);
      expect(r.exitCode).toBe(g.exitCode);
      expect(r.stderr.toString()).toBe(g.stderr.toString());
      expect(r.stderr.equals(g.stderr)).toBe(true);
      expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: i });
    }
  });

  it("warnings are replayed byte for byte on a hit", async () => {
    writeFileSync(join(dir, "warn.c"), "int f(void) { int unused; return 0; }\n");
    const args = ["gcc", "-Wall", "-c", "warn.c", "-o", "warn.o"];
    const g = await direct(dir, args);
    expect(g.stderr.toString()).toContain("unused");
    for (const expected of [{ misses: 1 }, { hits: 1 }]) {
      const before = await stats(o);
      const r = await orionCc(dir, o, args);
      expect([r.exitCode, r.stderr.toString()]).toEqual([0, g.stderr.toString()]);
      expect(delta(before, await stats(o))).toMatchObject(expected);
    }
  });

  it("-E, a link, and configure-style probes on stdin behave as gcc does", async () => {
    const e = ["gcc", "-E", "good.c"];
    const [ge, oe] = [await direct(dir, e), await orionCc(dir, o, e)];
    expect([oe.exitCode, oe.stdout.toString()]).toEqual([ge.exitCode, ge.stdout.toString()]);

    const before = await stats(o);
    const exe = join(dir, "probe-ok");
    const ok = await orionCc(dir, o, ["gcc", "-x", "c", "-", "-o", exe], "int main(void){return 0;}\n");
    expect(ok.exitCode, ok.stderr.toString()).toBe(0);
    expect((await execa(exe, [], { reject: false })).exitCode).toBe(0);

    const bad = "int main(void){ return }\n";
    const gBad = await direct(dir, ["gcc", "-x", "c", "-", "-o", join(dir, "probe-bad")], bad);
    const oBad = await orionCc(dir, o, ["gcc", "-x", "c", "-", "-o", join(dir, "probe-bad")], bad);
    expect(gBad.exitCode).not.toBe(0);
    expect([oBad.exitCode, oBad.stderr.toString()]).toEqual([gBad.exitCode, gBad.stderr.toString()]);

    // A link: main.c and good.c alone do not link (main calls bad()); gcc's answer is the one given.
    const link = ["gcc", "-o", "linked", "main.c", "good.c"];
    const [gl, ol] = [await direct(dir, link), await orionCc(dir, o, link)];
    expect(ol.exitCode).toBe(gl.exitCode);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 0, uncacheable: 3, fallbacks: 0 });

    // -M (depgen) gives gcc's output (cached: see the depgen tests below).
    const m = ["gcc", "-M", "good.c"];
    const [gm, om] = [await direct(dir, m), await orionCc(dir, o, m)];
    expect([om.exitCode, om.stdout.toString()]).toEqual([gm.exitCode, gm.stdout.toString()]);
  });

  it("a missing compiler exits 127, as a shell would", async () => {
    const r = await orionCc(dir, o, ["no-such-compiler-xyz", "-c", "good.c", "-o", "good.o"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr.toString()).toContain("no-such-compiler-xyz");
  });
});

describe("orion cc caches dependency generation (-M/-MM)", () => {
  const o = orionEnv("depgen");
  const dir = join(scratch.root, "depgen");
  mkdirSync(join(dir, "inc"), { recursive: true });
  writeFileSync(join(dir, "a.c"), '#include "a.h"\n#include <maybe.h>\nint a;\n');
  writeFileSync(join(dir, "b.c"), '#include "b.h"\n#include <stdio.h>\nint b;\n');
  writeFileSync(join(dir, "inc", "a.h"), "#define A 1\n");
  writeFileSync(join(dir, "inc", "b.h"), "#define B 1\n");
  const mm = ["gcc", "-Iinc", "-MM", "a.c", "b.c"];

  /** orion cc and gcc give the same bytes and exit code; returns the counter delta of the orion call. */
  async function same(args: string[]): Promise<CcCounts> {
    const g = await direct(dir, args);
    const before = await stats(o);
    const r = await orionCc(dir, o, args);
    expect([r.exitCode, r.stdout.toString(), r.stderr.toString()]).toEqual([g.exitCode, g.stdout.toString(), g.stderr.toString()]);
    return delta(before, await stats(o));
  }

  it("-MM over several sources: each source misses once, then hits, with gcc's exact output", async () => {
    expect(await same(mm)).toMatchObject({ misses: 2, hits: 0 });
    expect(await same(mm)).toMatchObject({ misses: 0, hits: 2 });
  });

  it("a header edit misses only the sources that read it; so does a missing <header> that appears (gcc skipped it silently)", async () => {
    writeFileSync(join(dir, "inc", "b.h"), "#define B 2\n");
    expect(await same(mm)).toMatchObject({ misses: 1, hits: 1 });
    expect(await same(mm)).toMatchObject({ misses: 0, hits: 2 });
    writeFileSync(join(dir, "inc", "maybe.h"), "#include \"a.h\"\n");
    expect(await same(mm)).toMatchObject({ misses: 1, hits: 1 });
    expect((await direct(dir, mm)).stdout.toString()).toContain("maybe.h");
  });

  it("a failing depgen (an #error) replays gcc's exit code, output and diagnostics from the cache", async () => {
    writeFileSync(join(dir, "c.c"), '#include "a.h"\n#error "not configured"\nint c;\n');
    const args = ["gcc", "-Iinc", "-MM", "c.c", "a.c"];
    expect(await same(args)).toMatchObject({ misses: 1, hits: 1 });
    expect(await same(args)).toMatchObject({ misses: 0, hits: 2 });
    expect((await direct(dir, args)).exitCode).not.toBe(0);
  });

  it("-MM -MF FILE restores the file byte for byte", async () => {
    const args = ["gcc", "-Iinc", "-MM", "-MT", "a.o", "-MF", "deps.mk", "a.c"];
    await direct(dir, args);
    const want = readFileSync(join(dir, "deps.mk"));
    for (const expected of [{ misses: 1 }, { hits: 1 }]) {
      writeFileSync(join(dir, "deps.mk"), "stale\n");
      expect(await same(args)).toMatchObject(expected);
      expect(readFileSync(join(dir, "deps.mk")).equals(want)).toBe(true);
    }
  });
});

describe("orion cc caches a compile without -o", () => {
  const o = orionEnv("no-o");
  const dir = copyFixture("multi-c", join(scratch.root, "no-o"));

  it("gcc -c lib/add.c writes add.o in the cwd; a hit restores it there, byte-identical", async () => {
    const args = ["gcc", "-O2", "-g", "-c", "lib/add.c"];
    await direct(dir, args);
    const want = readFileSync(join(dir, "add.o"));
    for (const expected of [{ misses: 1, hits: 0 }, { misses: 0, hits: 1 }]) {
      rmSync(join(dir, "add.o"), { force: true });
      const before = await stats(o);
      const r = await orionCc(dir, o, args);
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      expect(delta(before, await stats(o))).toMatchObject(expected);
      expect(readFileSync(join(dir, "add.o")).equals(want)).toBe(true);
    }
  });
});

describe("orion cc answers a configure script's probes as the compiler does", () => {
  const o = orionEnv("configure");

  it("config.h is identical with CC=gcc and CC='orion cc gcc', cold and warm", async () => {
    const run = async (cc: string, name: string): Promise<string> => {
      const d = copyFixture("configure-probe", join(scratch.root, name));
      const r = await execa("sh", ["./configure"], { cwd: d, env: envFor(o, { CC: cc }), extendEnv: false, reject: false, stdin: "ignore" });
      expect(r.exitCode, r.stderr).toBe(0);
      return readFileSync(join(d, "config.h"), "utf8");
    };
    const want = await run("gcc", "configure-gcc");
    expect(want).toContain("#define HAVE_STDIO_H 1");
    expect(want).toContain("#define HAVE_PRINTF 1");
    expect(want).toContain("#undef HAVE_NO_SUCH_FUNCTION_XYZ");
    expect(want).not.toContain("BROKEN_COMPILER");
    const orionCcCmd = `${process.execPath} ${ORION_BIN} cc gcc`;
    expect(await run(orionCcCmd, "configure-orion-1")).toBe(want);
    expect(await run(orionCcCmd, "configure-orion-2")).toBe(want);
  });
});

describe("orion cc with make on gen-header and C++", () => {
  const o = orionEnv("gen-header");

  it("a generated header, a -D change through make and a warm rebuild", async () => {
    const dir = copyFixture("gen-header", join(scratch.root, "gen-header"));
    let before = await stats(o);
    await makeOrion(dir, o);
    expect((await runProgram(join(dir, "hello"))).length).toBeGreaterThan(0);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 2, uncacheable: 1 });

    before = await stats(o);
    await makeOrion(dir, o, ["-B", "CFLAGS=-O2 -g -Wall -DEXTRA=1"]);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 0, misses: 2 });

    copyFixture("gen-header", dir);
    before = await stats(o);
    await makeOrion(dir, o);
    expect(delta(before, await stats(o))).toMatchObject({ hits: 2, misses: 0 });
  });

  it("g++ and c++ are different toolchains", async () => {
    const dir = copyFixture("cxx", join(scratch.root, "cxx"));
    const args = ["-O2", "-c", "shapes.cpp", "-o", "shapes.o"];
    const before = await stats(o);
    for (const [compiler, expected] of [["g++", { misses: 1, hits: 0 }], ["g++", { misses: 1, hits: 1 }], ["c++", { misses: 2, hits: 1 }]] as const) {
      expect((await orionCc(dir, o, [compiler, ...args])).exitCode).toBe(0);
      expect(delta(before, await stats(o))).toMatchObject(expected);
    }
  });
});
