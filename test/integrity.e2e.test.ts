// End-to-end: bit rot in every store (a flipped byte, its mtime put back) — the client's cache, a
// materialized context, the head's store, a node's store — never reaches a tree: the build exits 0
// with the bytes a clean build makes, and `orion cache verify` finds and repairs rot, lost files and strays.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OrionBuild, orionBuild, type OrionEnv, runOrion, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("integrity");

/** A small project: two objects archived into a library, a program linked against it that prints what they compute. */
const PROJECT: Record<string, string> = {
  "Makefile": [
    "CC = gcc",
    "all: app",
    "%.o: %.c calc.h",
    "\t$(CC) -O2 -c $< -o $@",
    "libcalc.a: add.o mul.o",
    "\tar rcs $@ $^",
    "app: main.o libcalc.a",
    "\t$(CC) -o $@ $^",
    "",
  ].join("\n"),
  "calc.h": "int add(int a, int b);\nint mul(int a, int b);\n",
  "add.c": '#include "calc.h"\nint add(int a, int b) { return a + b; }\n',
  "mul.c": '#include "calc.h"\nint mul(int a, int b) { return a * b; }\n',
  "main.c": '#include <stdio.h>\n#include "calc.h"\nint main(void) { printf("%d %d\\n", add(2, 3), mul(4, 5)); return 0; }\n',
};
const OUTPUTS = ["add.o", "mul.o", "main.o", "libcalc.a", "app"];

/** A main.c that prints the same but takes gcc -O2 a second or two: the link it feeds starts well after the archive is cached. */
function slowMain(): string {
  const n = 150;
  const fs = Array.from({ length: n }, (_, i) => `int f${i}(int x) { int s = 0; for (int k = 0; k < x; k++) s += (k * ${i + 3}) ^ (s >> 3); return s; }`);
  const calls = Array.from({ length: n }, (_, i) => ` t += f${i}(sink);`);
  return ['#include <stdio.h>', '#include "calc.h"', ...fs, "volatile int sink;", "int main(void) { int t = 0;", ...calls,
    ' if (t == 12345) puts("x");', ' printf("%d %d\\n", add(2, 3), mul(4, 5)); return 0; }', ""].join("\n");
}

/** A pristine copy of the project at `dir` (the same absolute path each time, so keys match). */
function pristine(dir: string): string {
  if (existsSync(dir)) for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(PROJECT)) writeFileSync(join(dir, name), text);
  return dir;
}

function sha256(bytes: Buffer | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The stored file of a blob in the store under `casDir`. */
function blobFile(casDir: string, hash: string): string {
  return join(casDir, "blobs", hash.slice(0, 2), hash);
}

/** Flips one byte of `file` in place and puts its mtime back: only a hash can tell. */
function flipKeepingMtime(file: string): void {
  const st = statSync(file);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x20;
  writeFileSync(file, bytes);
  chmodSync(file, st.mode & 0o777);
  utimesSync(file, st.atime, st.mtime);
}

function outputs(dir: string): Map<string, Buffer> {
  return new Map(OUTPUTS.map((f) => [f, readFileSync(join(dir, f))]));
}

function expectSameOutputs(dir: string, clean: Map<string, Buffer>): void {
  const differ = OUTPUTS.filter((f) => !readFileSync(join(dir, f)).equals(clean.get(f)!));
  expect(differ, "outputs that differ from a clean build").toEqual([]);
}

function expectOk(b: OrionBuild): void {
  expect(b.exitCode, `${b.command} exited ${b.exitCode}\n${b.stderr}`).toBe(0);
  expect(b.summary.failed).toBe(0);
}

const executed = (b: OrionBuild) => b.events.filter((e) => e.type === "action" && e.state === "finished").map((e) => e.label as string);

/** The clean build's outputs and what its program prints. */
let clean: Map<string, Buffer>;
let printed = "";

describe("bit rot in the embedded store (the client's cache)", () => {
  const dir = join(scratch.root, "proj");
  const env = (): OrionEnv => ({ cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome, driver: "graph" });
  const cas = () => join(scratch.root, "cache", "cas");

  beforeAll(async () => {
    const b = await orionBuild(pristine(dir), env());
    expectOk(b);
    clean = outputs(dir);
    printed = await runProgram(join(dir, "app"));
    expect(printed).toBe("5 20");
  }, 60_000);

  it("a rotten output blob behind a cached result is a miss: the action runs again and the tree gets the right bytes", async () => {
    flipKeepingMtime(blobFile(cas(), sha256(clean.get("add.o")!)));
    flipKeepingMtime(blobFile(cas(), sha256(clean.get("app")!)));
    const b = await orionBuild(pristine(dir), env());
    expectOk(b);
    expect(executed(b).sort()).toEqual(expect.arrayContaining([expect.stringContaining("add.o"), expect.stringContaining("app")]));
    expectSameOutputs(dir, clean);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
  }, 60_000);

  it("a rotten source blob (the upload skipped it: its stamp looks right) is sent again: --no-cache on a pristine tree prints right results", async () => {
    flipKeepingMtime(blobFile(cas(), sha256(PROJECT["add.c"]!)));
    const b = await orionBuild(pristine(dir), env(), ["--no-cache"]);
    expectOk(b);
    expect(b.stderr).toMatch(/does not match its digest/);
    expect(b.stderr).toMatch(/uploaded them again/);
    expectSameOutputs(dir, clean);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
  }, 60_000);

  it("a rotten file in a materialized context is re-verified before reuse, so a new process does not compile against it", async () => {
    const ctxDir = join(scratch.root, "cache", "work", "ctx");
    const roots = readdirSync(ctxDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
    expect(roots.length).toBeGreaterThan(0);
    for (const r of roots) if (existsSync(join(ctxDir, r, "mul.c"))) flipKeepingMtime(join(ctxDir, r, "mul.c"));
    const b = await orionBuild(pristine(dir), env(), ["--no-cache"]);
    expectOk(b);
    expect(b.stderr).toMatch(/a stored context no longer matches its digests/);
    expectSameOutputs(dir, clean);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
  }, 60_000);

  it("orion cache verify drops a rotten blob and a row whose file is gone, indexes a sound stray file, and says so", async () => {
    flipKeepingMtime(blobFile(cas(), sha256(clean.get("mul.o")!)));
    unlinkSync(blobFile(cas(), sha256(clean.get("libcalc.a")!)));
    const stray = "a blob the index never heard of\n";
    mkdirSync(join(cas(), "blobs", sha256(stray).slice(0, 2)), { recursive: true });
    writeFileSync(blobFile(cas(), sha256(stray)), stray);
    const r = await runOrion(["cache", "verify"], env());
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("1 rotten blob dropped");
    expect(r.stdout).toContain("1 index row without a file dropped");
    expect(r.stdout).toContain("1 unindexed file indexed");
    expect(r.stdout).toContain("the store is consistent");
    expect(existsSync(blobFile(cas(), sha256(clean.get("mul.o")!)))).toBe(false);
    const again = await runOrion(["cache", "verify", "--json"], env());
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ rotten: 0, missing: 0, orphansIndexed: 0, orphansRemoved: 0 });
    // What verify dropped is rebuilt (a miss), never served.
    const b = await orionBuild(pristine(dir), env());
    expectOk(b);
    expectSameOutputs(dir, clean);
  }, 60_000);

  it("orion cache verify refuses a --data-dir without a store, and an unknown flag, with exit 2", async () => {
    const none = await runOrion(["cache", "verify", "--data-dir", join(scratch.root, "nowhere")], env());
    expect(none.exitCode).toBe(2);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
    expect(none.stderr).toContain("--data-dir");
    expect((await runOrion(["cache", "verify", "--bogus"], env())).exitCode).toBe(2);
  });
});

describe("bit rot on a farm (head + node processes)", () => {
  const TOKEN = "integrity-e2e-token";
  const dir = join(scratch.root, "farm-proj");
  const env = (): OrionEnv => ({ cacheDir: join(scratch.root, "farm-client-cache"), configHome: scratch.configHome, driver: "graph" });
  let head: Daemon;
  let node: Daemon | undefined;
  let address = "";
  const headCas = () => join(scratch.root, "head", "cas");
  const startNode = async (name: string) =>
    startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "2", "--name", name, "--data-dir", join(scratch.root, name)]);
  const farmBuild = (extra: string[] = []) => orionBuild(pristine(dir), env(), ["--head", address, "--token", TOKEN, ...extra]);
  /** A build of the tree as it is (not made pristine first). */
  const farmBuild0 = () => orionBuild(dir, env(), ["--head", address, "--token", TOKEN]);

  beforeAll(async () => {
    head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN, "--heartbeat-ms", "200", "--node-ttl-ms", "2000"]);
    address = head.hello.grpc as string;
    node = await startNode("node-a");
    const b = await farmBuild();
    expectOk(b);
    expectSameOutputs(dir, clean);
  }, 60_000);

  afterAll(async () => {
    if (node) await stopDaemon(node);
    if (head) await stopDaemon(head);
    scratch.cleanup();
  });

  it("rot in the head's store: a rotten output is a miss, a rotten input is dropped and uploaded again by the client; exit 0, right bytes", async () => {
    flipKeepingMtime(blobFile(headCas(), sha256(clean.get("mul.o")!)));
    flipKeepingMtime(blobFile(headCas(), sha256(PROJECT["add.c"]!)));
    // A fresh node holds nothing: it must read the context (add.c included) from the head.
    await stopDaemon(node!);
    node = await startNode("node-b");
    const b = await farmBuild();
    expectOk(b);
    expect(b.stderr).toMatch(/uploaded them again/);
    expect(executed(b)).toEqual(expect.arrayContaining([expect.stringContaining("mul.o")]));
    expectSameOutputs(dir, clean);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
    expect(readFileSync(head.logFile, "utf8")).toMatch(/does not match its digest/);
  }, 60_000);

  it("rot in the head's store of a build output a later link needs (after its cache hit): the client re-sends it from the tree; exit 0, right bytes", async () => {
    // A fresh node holds nothing: the link must read libcalc.a from the head.
    await stopDaemon(node!);
    node = await startNode("node-c");
    pristine(dir);
    writeFileSync(join(dir, "main.c"), slowMain());
    const building = farmBuild0();
    // The archive's cache hit was verified and its file written into the tree; main.o still compiles: rot it now.
    const archive = join(dir, "libcalc.a");
    for (let i = 0; i < 600 && !existsSync(archive); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(archive), "libcalc.a written from the cache").toBe(true);
    flipKeepingMtime(blobFile(headCas(), sha256(clean.get("libcalc.a")!)));
    const b = await building;
    expectOk(b);
    expect(b.stderr).toMatch(/re-sent a build output the head lost/);
    expect(b.stderr).not.toMatch(/could not upload a lost blob again/);
    expect(executed(b)).toEqual(expect.arrayContaining([expect.stringContaining("app")]));
    expect(readFileSync(archive).equals(clean.get("libcalc.a")!)).toBe(true);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
    expect(readFileSync(head.logFile, "utf8")).toMatch(/the store lost inputs of an action/);
    expect(readFileSync(blobFile(headCas(), sha256(clean.get("libcalc.a")!))).equals(clean.get("libcalc.a")!)).toBe(true);
  }, 90_000);

  it("rot in a node's store: the node drops the blob, fetches it again and re-makes its context after a restart", async () => {
    await stopDaemon(node!);
    flipKeepingMtime(blobFile(join(scratch.root, "node-b", "cas"), sha256(PROJECT["main.c"]!)));
    node = await startNode("node-b");
    const b = await farmBuild(["--no-cache"]);
    expectOk(b);
    expectSameOutputs(dir, clean);
    expect(await runProgram(join(dir, "app"))).toBe(printed);
    const log = readFileSync(node.logFile, "utf8");
    expect(log).toMatch(/a stored context no longer matches its digests/);
    expect(log).toMatch(/does not match its digest/);
  }, 60_000);
});
