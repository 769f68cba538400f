// End-to-end, opt-in (ORION_TEST_REDIS=1): `orion graph --format json` of a fresh Redis 7.0.15 tree against the graph
// recorded from a real `make -j2` of it (strace; /work/shared/data/README.md): the same compile units, archives and links,
// with the same working directories and argv. Needs the tarball (scripts/fetch-redis: network and root the first time,
// then .cache/redis) and the recorded graph (ORION_REDIS_GRAPH, default ../shared/data/ beside the repo).
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildGraph, GraphCommand } from "../dag-extract/index.js";
import { cleanEnv, REPO, runOrion, Scratch } from "./helpers.js";

const REFERENCE = process.env.ORION_REDIS_GRAPH ?? resolve(REPO, "..", "shared", "data", "redis-7.0.15-graph.json");
const ENABLED = process.env.ORION_TEST_REDIS === "1";

interface RefNode {
  id: string;
  kind: string;
  cwd: string;
  argv: string[];
  inputs: string[];
  outputs: string[];
}

/**
 * The recording machine had libsystemd, so Redis's Makefile (pkg-config) added -DHAVE_LIBSYSTEMD to every src compile
 * and -lsystemd to the links; whether this machine does is not the extractor's business.
 */
const MACHINE_DEPENDENT = new Set(["-DHAVE_LIBSYSTEMD", "-lsystemd"]);
/** jemalloc's Makefile is written by its ./configure: a dry run of a fresh tree cannot list its compiles. */
const JEMALLOC = "deps/jemalloc/";

interface Unit {
  cwd: string;
  argv: string[];
}

/** Tool runs keyed by the file they produce (the .o of a compile, the archive, the program), argv without MACHINE_DEPENDENT words. */
function byOutput(entries: { output: string; cwd: string; argv: string[] }[]): Map<string, Unit> {
  const m = new Map<string, Unit>();
  for (const e of entries) {
    expect(m.has(e.output), `two producers of ${e.output}`).toBe(false);
    m.set(e.output, { cwd: e.cwd, argv: e.argv.filter((w) => !MACHINE_DEPENDENT.has(w)) });
  }
  return m;
}

function refUnits(nodes: RefNode[], kind: string, keep: (n: RefNode) => boolean = () => true): Map<string, Unit> {
  return byOutput(
    nodes
      .filter((n) => n.kind === kind && keep(n))
      .map((n) => ({ output: kind === "compile" ? n.outputs.find((o) => o.endsWith(".o"))! : n.outputs[0]!, cwd: n.cwd, argv: n.argv })),
  );
}

function orionUnits(commands: GraphCommand[], kind: string): Map<string, Unit> {
  // dag-extract spells out the object a compile without -o implies (`cc -c net.c` → `... -o net.o`); the recording has argv as run.
  const asRun = (c: GraphCommand) => (c.line.includes(" -o") || c.kind !== "compile" ? c.argv : c.argv.slice(0, -2));
  return byOutput(commands.filter((c) => c.kind === kind && !c.host).map((c) => ({ output: c.outputs[0]!, cwd: c.cwd, argv: asRun(c) })));
}

function inJemalloc(n: RefNode): boolean {
  return `${n.cwd}/`.startsWith(JEMALLOC);
}

function isRanlib(n: RefNode): boolean {
  return n.argv[0] === "ranlib";
}

describe.skipIf(!ENABLED)("orion graph of Redis 7.0.15 against its recorded build graph", () => {
  const scratch = new Scratch("redis-graph");
  afterAll(() => scratch.cleanup());
  let ref: RefNode[];
  let graph: BuildGraph;

  beforeAll(async () => {
    expect(existsSync(REFERENCE), `the recorded graph ${REFERENCE} (set ORION_REDIS_GRAPH)`).toBe(true);
    ref = (JSON.parse(readFileSync(REFERENCE, "utf8")) as { nodes: RefNode[] }).nodes;
    const tree = join(scratch.root, "redis");
    const fetched = await execa(join(REPO, "scripts", "fetch-redis"), ["--extract", tree], { env: cleanEnv(), extendEnv: false, reject: false, timeout: 300_000 });
    expect(fetched.exitCode, `scripts/fetch-redis --extract: ${fetched.stderr}`).toBe(0);
    const r = await runOrion(["graph", "--format", "json", tree], { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome });
    expect(r.exitCode, `${r.command}\n${r.stderr}`).toBe(0);
    graph = JSON.parse(r.stdout) as BuildGraph;
  }, 360_000);

  it("the recorded graph is the one described: 207 compiles (67 of them jemalloc's), 5 archive runs, 5 links", () => {
    expect(ref.filter((n) => n.kind === "compile")).toHaveLength(207);
    expect(ref.filter((n) => n.kind === "compile" && inJemalloc(n))).toHaveLength(67);
    expect(ref.filter((n) => n.kind === "archive")).toHaveLength(5);
    expect(ref.filter((n) => n.kind === "link")).toHaveLength(5);
  });

  it("the same 140 compile units outside jemalloc, each with the recorded cwd and argv", () => {
    const want = refUnits(ref, "compile", (n) => !inJemalloc(n));
    const have = orionUnits(graph.commands, "compile");
    expect(want.size).toBe(140);
    expect([...have.keys()].sort()).toEqual([...want.keys()].sort());
    expect(have).toEqual(want);
  });

  it("the same archives outside jemalloc as actions (hiredis, hdr_histogram, lua), and lua's ranlib as a host step", () => {
    const want = refUnits(ref, "archive", (n) => !inJemalloc(n) && !isRanlib(n));
    expect([...want.keys()].sort()).toEqual(["deps/hdr_histogram/libhdrhistogram.a", "deps/hiredis/libhiredis.a", "deps/lua/src/liblua.a"]);
    expect(orionUnits(graph.commands, "archive")).toEqual(want);
    // ranlib rewrites the archive in place: Orion runs it in the real tree, after the ar.
    const ranlib = ref.filter(isRanlib);
    expect(ranlib.map((n) => [n.cwd, n.argv])).toEqual([["deps/lua/src", ["ranlib", "liblua.a"]]]);
    expect(graph.commands.filter((c) => c.host && c.kind === "archive").map((c) => [c.cwd, c.line])).toEqual([["deps/lua/src", "ranlib liblua.a"]]);
  });

  it("the same 5 links: lua, luac, redis-server, redis-cli, redis-benchmark", () => {
    const want = refUnits(ref, "link");
    expect([...want.keys()].sort()).toEqual(["deps/lua/src/lua", "deps/lua/src/luac", "src/redis-benchmark", "src/redis-cli", "src/redis-server"]);
    expect(orionUnits(graph.commands, "link")).toEqual(want);
  });

  it("jemalloc: its configure and its make are host steps, and every src compile that reads jemalloc.h waits for both", () => {
    // None of jemalloc's 67 compiles nor its archive can be in a dry run's graph of a fresh tree: its Makefile does not exist yet.
    expect(graph.commands.filter((c) => !c.host && c.outputs.some((o) => o.startsWith(JEMALLOC)))).toEqual([]);
    const configure = graph.commands.filter((c) => c.host && c.cwd === "deps" && /^cd jemalloc && \.\/configure /.test(c.line));
    const make = graph.commands.filter((c) => c.host && c.cwd === "deps" && /^cd jemalloc && make .*lib\/libjemalloc\.a$/.test(c.line));
    expect(configure).toHaveLength(1);
    expect(make).toHaveLength(1);
    const byId = new Map(graph.commands.map((c) => [c.id, c]));
    const ancestors = new Map<string, Set<string>>();
    const before = (id: string): Set<string> => {
      let s = ancestors.get(id);
      if (s) return s;
      s = new Set();
      for (const d of byId.get(id)!.deps) {
        s.add(d);
        for (const a of before(d)) s.add(a);
      }
      ancestors.set(id, s);
      return s;
    };
    const readers = ref.filter((n) => n.kind === "compile" && n.inputs.includes("deps/jemalloc/include/jemalloc/jemalloc.h") && !inJemalloc(n));
    expect(readers.length).toBe(69);
    const compileOf = new Map(graph.commands.filter((c) => c.kind === "compile" && !c.host).map((c) => [c.outputs[0]!, c]));
    for (const n of readers) {
      const c = compileOf.get(n.outputs.find((o) => o.endsWith(".o"))!)!;
      expect(before(c.id).has(make[0]!.id), `${c.label} waits for jemalloc's make`).toBe(true);
      expect(before(c.id).has(configure[0]!.id), `${c.label} waits for jemalloc's configure`).toBe(true);
    }
  });
});
