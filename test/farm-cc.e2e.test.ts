// End-to-end: `make CC="orion cc gcc"` with ORION_HEAD set — the native client, the agent, a real head and two real node
// processes on 127.0.0.1 port 0 and real gcc; cache misses compile on the farm, and a farm that is down costs a fallback, not a build.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CcStats, type CcCounts } from "../src/cc/stats.js";
import { cleanEnv, copyFixture, differingFiles, makeReference, ORION_BIN, REPO, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";
import { stopAgents } from "./agent-helpers.js";

const scratch = new Scratch("farm-cc");
const TOKEN = "farm-cc-token";
const PROGRAMS = ["app1/app1", "app2/app2"];
/** multi-c's compiles: 12 + 12 library sources, 2 + 2 program sources. */
const COMPILES = 28;

let head: Daemon;
let address = "";
const nodes: Daemon[] = [];
const sockets: string[] = [];
let reference: Awaited<ReturnType<typeof makeReference>>;
/** One tree path for every build, so objects built with -g (which embed it) compare byte for byte. */
const tree = join(scratch.root, "multi-c");

/** A free loopback port nothing listens on: bound, then closed. */
async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** The environment of one client: its own agent socket and cache dir, and the farm to use. */
function client(name: string, extra: Record<string, string | undefined>): { env: NodeJS.ProcessEnv; cacheDir: string } {
  const dir = scratch.dir(name);
  const socket = join(dir, "agent.sock");
  sockets.push(socket);
  const cacheDir = join(dir, "cache");
  const env = cleanEnv({ ORION_AGENT_SOCKET: socket, ORION_CACHE_DIR: cacheDir, XDG_CONFIG_HOME: scratch.configHome, ORION_AGENT_IDLE_MS: "60000", ...extra });
  return { env, cacheDir };
}

async function makeWithOrion(env: NodeJS.ProcessEnv) {
  copyFixture("multi-c", tree);
  return execa("make", ["-C", tree, "-j2", `CC=${ORION_BIN} cc gcc`], { env, extendEnv: false, reject: false, stdin: "ignore", timeout: 60_000 });
}

function orionLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("orion cc:"));
}

function counts(cacheDir: string): CcCounts {
  return CcStats.readCounts(cacheDir);
}

beforeAll(async () => {
  execFileSync("make", ["-s", "native/build/orion-cc"], { cwd: REPO, stdio: "inherit" });
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN, "--heartbeat-ms", "200", "--node-ttl-ms", "1000"]);
  address = head.hello.grpc as string;
  nodes.push(...(await Promise.all([1, 2].map((i) => startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--name", `cc-node-${i}`, "--data-dir", join(scratch.root, `node-${i}`)])))));
  reference = await makeReference("multi-c", tree, PROGRAMS);
}, 60_000);

afterAll(async () => {
  for (const s of sockets) await stopAgents(s);
  await Promise.all(nodes.map((n) => stopDaemon(n)));
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("orion cc with ORION_HEAD: misses compile on the farm", () => {
  it("make -j2 compiles every object on the farm, byte for byte as plain make; a fresh copy is all cache hits", async () => {
    const { env, cacheDir } = client("farm", { ORION_HEAD: address, ORION_TOKEN: TOKEN });
    const r = await makeWithOrion(env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(orionLines(r.stderr)).toEqual([]);
    expect(differingFiles(tree, reference.outputs)).toEqual([]);
    for (const p of PROGRAMS) expect(await runProgram(join(tree, p))).toBe(reference.stdout.get(p));
    const first = counts(cacheDir);
    expect(first, JSON.stringify(first)).toMatchObject({ misses: COMPILES, remoteCompiles: COMPILES, localCompiles: 0, fallbacks: 0, hits: 0 });
    // Both nodes compiled (their debug logs, written asynchronously, name each action they ran).
    const ranOn = () => nodes.map((n) => readFileSync(n.logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"action finished"')).length);
    for (let waited = 0; waited < 3000 && ranOn().reduce((a, b) => a + b, 0) < COMPILES; waited += 50) await new Promise((r) => setTimeout(r, 50));
    const ran = ranOn();
    expect(ran.reduce((a, b) => a + b, 0), JSON.stringify(ran)).toBe(COMPILES);
    expect(ran.every((c) => c > 0), JSON.stringify(ran)).toBe(true);

    // A fresh copy at the same path: every compile is a hit in the local cache, nothing goes to the farm.
    const again = await makeWithOrion(env);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(differingFiles(tree, reference.outputs)).toEqual([]);
    const second = counts(cacheDir);
    expect(second, JSON.stringify(second)).toMatchObject({ hits: COMPILES, misses: COMPILES, remoteCompiles: COMPILES, localCompiles: 0, fallbacks: 0 });

    // Another client, its local cache empty: its misses are answered from the head's action cache, byte for byte too.
    const other = client("farm-2", { ORION_HEAD: address, ORION_TOKEN: TOKEN });
    const third = await makeWithOrion(other.env);
    expect(third.exitCode, third.stderr).toBe(0);
    expect(differingFiles(tree, reference.outputs)).toEqual([]);
    expect(counts(other.cacheDir)).toMatchObject({ misses: COMPILES, remoteCompiles: COMPILES, localCompiles: 0, fallbacks: 0 });
  });

  it("a -c without -o compiles on the farm as -o x.o does: the object gcc would write, in the cwd", async () => {
    const { env, cacheDir } = client("no-o", { ORION_HEAD: address, ORION_TOKEN: TOKEN });
    const src = copyFixture("multi-c", join(scratch.root, "no-o-tree"));
    const lib = join(src, "lib");
    const finished = () => nodes.map((n) => readFileSync(n.logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"action finished"')).length).reduce((a, b) => a + b, 0);
    const before = finished();
    const r = await execa(ORION_BIN, ["cc", "gcc", "-O2", "-c", "add.c"], { cwd: lib, env, extendEnv: false, reject: false, stdin: "ignore", timeout: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(orionLines(r.stderr)).toEqual([]);
    expect(counts(cacheDir), JSON.stringify(counts(cacheDir))).toMatchObject({ misses: 1, remoteCompiles: 1, localCompiles: 0, fallbacks: 0 });
    for (let waited = 0; waited < 3000 && finished() < before + 1; waited += 50) await new Promise((res) => setTimeout(res, 50));
    expect(finished()).toBe(before + 1);
    // The object is the one plain gcc writes for the same call, byte for byte; no depfile is left behind (none was asked for).
    execFileSync("gcc", ["-O2", "-c", "add.c", "-o", "add.ref.o"], { cwd: lib });
    expect(readFileSync(join(lib, "add.o")).equals(readFileSync(join(lib, "add.ref.o")))).toBe(true);
    expect(existsSync(join(lib, "add.d"))).toBe(false);
  });

  it("a farm that is down: the build still succeeds, compiled here, each compile a fallback, said once", async () => {
    const dead = await deadAddress();
    const { env, cacheDir } = client("down", { ORION_HEAD: dead });
    const r = await makeWithOrion(env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(differingFiles(tree, reference.outputs)).toEqual([]);
    const said = orionLines(r.stderr);
    expect(said, r.stderr).toHaveLength(1);
    expect(said[0]).toContain(`orion cc: farm at ${dead} unreachable (`);
    expect(said[0]).toMatch(/; compiling locally$/);
    expect(counts(cacheDir)).toMatchObject({ fallbacks: COMPILES, localCompiles: COMPILES, remoteCompiles: 0 });
  });

  it("a compiler no node has: compiled here, with one line naming the reason", async () => {
    const { env, cacheDir } = client("no-toolchain", { ORION_HEAD: address, ORION_TOKEN: TOKEN });
    const src = copyFixture("multi-c", join(scratch.root, "no-toolchain-tree"));
    // gcc under another name: its toolchain digest (which covers the name it is called by) is one no node advertises.
    symlinkSync(execFileSync("sh", ["-c", "command -v gcc"], { encoding: "utf8" }).trim(), join(src, "othergcc"));
    const call = (out: string) => execa(ORION_BIN, ["cc", "./othergcc", "-O2", "-c", "lib/add.c", "-o", out], { cwd: src, env, extendEnv: false, reject: false, stdin: "ignore", timeout: 30_000 });
    const r = await call("lib/add.o");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(orionLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^orion cc: farm at ${address}: no node has the toolchain for othergcc .*; compiling locally$`))]);
    expect(existsSync(join(src, "lib/add.o"))).toBe(true);
    const r2 = await call("lib/add2.o");
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(orionLines(r2.stderr)).toEqual([]);
    expect(counts(cacheDir)).toMatchObject({ fallbacks: 2, localCompiles: 2, remoteCompiles: 0 });
  });

  it("loads grpc-js only for a call that names a farm (ORION_HEAD)", async () => {
    const src = copyFixture("multi-c", join(scratch.root, "grpc-load-tree"));
    // One CcService call in a fresh Node process, then: is grpc-js (a CommonJS package) in its module cache?
    const script = `
      import { createRequire } from "node:module";
      import { CcService } from ${JSON.stringify(join(REPO, "dist/src/cc/service.js"))};
      import { silentLogger } from ${JSON.stringify(join(REPO, "dist/src/core/logger.js"))};
      const service = new CcService({ cacheDir: process.env.CACHE, logger: silentLogger });
      const env = { ...process.env };
      if (process.env.FARM) env.ORION_HEAD = process.env.FARM;
      const reply = await service.handle({ argv: ["gcc", "-O2", "-c", "lib/add.c", "-o", "lib/add.o"], cwd: process.env.SRC, env });
      service.close();
      const grpc = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes("@grpc/grpc-js"));
      console.log(JSON.stringify({ exitCode: reply.exitCode, grpc }));`;
    const probe = async (farm: string | undefined) => {
      const r = await execa(process.execPath, ["--input-type=module", "-e", script], {
        env: cleanEnv({ CACHE: join(scratch.root, `grpc-load-cache-${farm ? "farm" : "plain"}`), SRC: src, FARM: farm }),
        extendEnv: false,
        reject: false,
        timeout: 30_000,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { exitCode: number; grpc: boolean };
    };
    expect(await probe(undefined)).toEqual({ exitCode: 0, grpc: false });
    expect(await probe(await deadAddress())).toEqual({ exitCode: 0, grpc: true });
  });

  it("ORION_NO_FALLBACK=1 with the farm down: the compile fails with exit code 3 and one clear line", async () => {
    const dead = await deadAddress();
    const { env } = client("no-fallback", { ORION_HEAD: dead, ORION_NO_FALLBACK: "1" });
    const src = copyFixture("multi-c", join(scratch.root, "no-fallback-tree"));
    const r = await execa(ORION_BIN, ["cc", "gcc", "-O2", "-c", "lib/add.c", "-o", "lib/add.o"], { cwd: src, env, extendEnv: false, reject: false, stdin: "ignore", timeout: 30_000 });
    expect(r.exitCode).toBe(3);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^orion cc: farm at ${dead} unreachable \\(.+\\); not compiling locally \\(ORION_NO_FALLBACK=1\\)$`))]);
    expect(existsSync(join(src, "lib/add.o"))).toBe(false);
  });
});
