// End-to-end: a real farm — `orion head` and four `orion node` processes on 127.0.0.1 port 0 — building
// the fixtures with `orion build --head` and real gcc; no transport is mocked.
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildOutputs,
  copyFixture,
  differingFiles,
  makeReference,
  type OrionBuild,
  orionBuild,
  type OrionEnv,
  runOrion,
  runProgram,
  Scratch,
  snapshot,
} from "./helpers.js";
import { type Daemon, startDaemon, startSlowGxxNodes, stopDaemon, watchedFarmBuild } from "./farm-helpers.js";

const scratch = new Scratch("farm");
const TOKEN = "farm-e2e-token";
const HEARTBEAT_MS = 200;
const NODE_TTL_MS = 1000;

let head: Daemon;
let address = "";
const nodes: Daemon[] = [];
let noToolchain: Daemon;
const client = (): OrionEnv => ({ cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" });

function nodeArgs(i: number): string[] {
  return ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--data-dir", join(scratch.root, `node-${i}`)];
}

async function farmBuild(dir: string, extra: string[] = []): Promise<OrionBuild> {
  return orionBuild(dir, client(), ["--head", address, "--token", TOKEN, ...extra]);
}

async function status(): Promise<{ nodes: { name: string; toolchains: string[]; state: string }[] }> {
  const r = await runOrion(["status", "--head", address, "--token", TOKEN, "--json"], client());
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** How many of `daemons` have logged a line matching `re` (their logs are written asynchronously: waits up to 5 s). */
async function logged(daemons: Daemon[], re: RegExp): Promise<number> {
  const count = () => daemons.filter((d) => existsSync(d.logFile) && re.test(readFileSync(d.logFile, "utf8"))).length;
  const deadline = Date.now() + 5_000;
  while (count() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return count();
}

/** Every executed action of every farm build, by node name. */
const executedOn = new Map<string, number>();
function tally(b: OrionBuild): void {
  for (const [n, c] of Object.entries(b.summary.nodes)) executedOn.set(n, (executedOn.get(n) ?? 0) + c);
}

beforeAll(async () => {
  head = await startDaemon(scratch, [
    "head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN,
    "--heartbeat-ms", String(HEARTBEAT_MS), "--node-ttl-ms", String(NODE_TTL_MS), "--pid-file", join(scratch.root, "head.pid"),
  ]);
  expect(head.hello.type).toBe("listening");
  address = head.hello.grpc as string;
  expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  nodes.push(...(await Promise.all([1, 2, 3].map((i) => startDaemon(scratch, nodeArgs(i))))));
  noToolchain = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--name", "no-toolchain", "--data-dir", join(scratch.root, "node-x"), "--toolchain", "true=/bin/true"]);
}, 60_000);

afterAll(async () => {
  await Promise.all([...nodes, noToolchain].filter(Boolean).map((d) => stopDaemon(d)));
  if (head) expect(await stopDaemon(head)).toBe(0);
  expect(existsSync(join(scratch.root, "head.pid")), "the pid file outlived the head").toBe(false);
  scratch.cleanup();
});

describe("a head and four nodes on loopback", () => {
  it("writes the head's pid file while it runs", () => {
    expect(readFileSync(join(scratch.root, "head.pid"), "utf8").trim()).toBe(String(head.proc.pid));
  });

  it("registers every node under a unique name, with the toolchains it was given", async () => {
    const names = nodes.map((n) => n.hello.name as string);
    expect(new Set(names).size).toBe(3);
    const s = await status();
    expect(s.nodes.map((n) => n.name).sort()).toEqual([...names, "no-toolchain"].sort());
    expect(s.nodes.find((n) => n.name === "no-toolchain")!.toolchains).toEqual(["true"]);
    expect(s.nodes.find((n) => n.name === names[0])!.toolchains).toEqual(expect.arrayContaining(["gcc", "cc", "ar"]));
  });

  it("builds multi-c over the farm byte for byte as the embedded build does, on more than one node", async () => {
    const tree = join(scratch.root, "multi-c");
    // The embedded build first, at the same absolute path (objects built with -g embed it).
    copyFixture("multi-c", tree);
    const embedded = await orionBuild(tree, { cacheDir: join(scratch.root, "embedded-cache"), configHome: scratch.configHome, driver: "graph" });
    expect(embedded.exitCode, embedded.stderr).toBe(0);
    const programs = ["app1/app1", "app2/app2"];
    const want = snapshot(tree, buildOutputs(tree, programs));
    const stdout = await runProgram(join(tree, "app1/app1"));

    copyFixture("multi-c", tree);
    const farm = await farmBuild(tree);
    tally(farm);
    expect(farm.exitCode, farm.stderr).toBe(0);
    expect(farm.summary.executed).toBe(32);
    expect(differingFiles(tree, want)).toEqual([]);
    expect(await runProgram(join(tree, "app1/app1"))).toBe(stdout);
    expect(Object.keys(farm.summary.nodes).length, JSON.stringify(farm.summary.nodes)).toBeGreaterThan(1);
    const started = farm.events.filter((e) => e.type === "action" && e.state === "finished").map((e) => e.node);
    expect(new Set(started).size).toBeGreaterThan(1);
    // The nodes held nothing of this tree: its first provisioning came as one tar stream from the head.
    expect(await logged(nodes, /"msg":"context provisioned from one tar stream"/)).toBeGreaterThan(0);
    expect(await logged([head], /"msg":"sent a tree as one tar stream"/)).toBeGreaterThan(0);

    // A fresh copy at the same path: everything comes from the head's action cache.
    copyFixture("multi-c", tree);
    const warm = await farmBuild(tree);
    expect(warm.exitCode, warm.stderr).toBe(0);
    expect(warm.summary.cacheHits).toBe(32);
    expect(differingFiles(tree, want)).toEqual([]);
  });

  it("builds the C++ and generated-header fixtures as make does (host steps run on the client)", async () => {
    for (const [name, programs] of [["cxx", ["geometry"]], ["gen-header", ["hello"]]] as const) {
      const tree = join(scratch.root, name);
      const ref = await makeReference(name, tree, [...programs]);
      copyFixture(name, tree);
      const b = await farmBuild(tree);
      tally(b);
      expect(b.exitCode, `${name}: ${b.stderr}`).toBe(0);
      expect(differingFiles(tree, ref.outputs), name).toEqual([]);
      for (const [p, out] of ref.stdout) expect(await runProgram(join(tree, p))).toBe(out);
    }
  });

  it("refuses a wrong or missing token with exit 3 and a clear message", async () => {
    const tree = copyFixture("multi-c", join(scratch.root, "token"));
    const wrong = await runOrion(["build", tree, "--head", address, "--token", "not-the-token"], client());
    expect(wrong.exitCode).toBe(3);
    expect(wrong.stderr).toMatch(/refused .*wrong token/);
    const missing = await runOrion(["build", tree, "--head", address], client());
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toMatch(/requires a token/);
    const node = await runOrion(["node", "--head", address, "--token", "nope", "--data-dir", join(scratch.root, "node-bad")], client());
    expect(node.exitCode).toBe(3);
    expect(node.stderr).toMatch(/wrong token/);
  });

  it("refuses bad farm flags with one line and exit 2, and an unreachable head with exit 3", async () => {
    const cases: [string[], RegExp][] = [
      [["head", "--listen", "nowhere"], /--listen takes HOST:PORT/],
      [["head", "--listen", "0.0.0.0:0", "--data-dir", join(scratch.root, "head-open")], /not a loopback address: give --token/],
      [["head", "--node-ttl-ms", "soon"], /--node-ttl-ms takes a whole number/],
      [["node", "--data-dir", join(scratch.root, "node-nohead")], /needs --head HOST:PORT/],
      [["node", "--head", address, "--toolchain", "gcc"], /--toolchain takes NAME=PATH/],
      // A node's blob server follows the head's rule: no open address without a token.
      [["node", "--head", address, "--listen", "0.0.0.0:0", "--data-dir", join(scratch.root, "node-open")], /--listen 0\.0\.0\.0:0 is not a loopback address: give --token/],
      [["node", "--head", address, "--listen", "here"], /--listen takes HOST:PORT/],
      [["status", "--head", "nowhere"], /head: expected HOST:PORT/],
    ];
    for (const [args, message] of cases) {
      const r = await runOrion(args, client());
      expect(r.exitCode, `orion ${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const down = await runOrion(["status", "--head", "127.0.0.1:1"], client());
    expect(down.exitCode).toBe(3);
    expect(down.stderr).toMatch(/cannot reach the head at 127\.0\.0\.1:1/);
  });

  it("fails at once, exit 3, when no node has the build's toolchain", async () => {
    // A gcc wrapper is another toolchain (its driver's bytes differ), which no node advertises.
    const bin = scratch.dir("other-gcc");
    writeFileSync(join(bin, "gcc"), '#!/bin/sh\nexec /usr/bin/gcc "$@"\n');
    chmodSync(join(bin, "gcc"), 0o755);
    const tree = copyFixture("multi-c", join(scratch.root, "no-toolchain"));
    const started = Date.now();
    const r = await runOrion(["build", tree, "--head", address, "--token", TOKEN, "--", `CC=${join(bin, "gcc")}`], client());
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/no node has the toolchain for gcc/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("gives a node without the build's toolchain nothing to run", () => {
    expect([...executedOn.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(executedOn.has("no-toolchain")).toBe(false);
  });

  it("stops a node cleanly on SIGTERM; restarted, it keeps its name", async () => {
    const old = nodes[1]!;
    const name = old.hello.name as string;
    expect(await stopDaemon(old)).toBe(0);
    expect((await status()).nodes.map((n) => n.name)).not.toContain(name);
    nodes[1] = await startDaemon(scratch, nodeArgs(2));
    expect(nodes[1].hello.name).toBe(name);
    expect((await status()).nodes.map((n) => n.name)).toContain(name);
  });

  it("hands a stopping node's running work back to the queue: the build still succeeds on another node", async () => {
    const { gxx, nodes: slow } = await startSlowGxxNodes(scratch, address, TOKEN, ["slow-1", "slow-2"]);
    try {
      const tree = copyFixture("cxx", join(scratch.root, "cxx-handback"));
      // Stop slow-1 as soon as it has started something.
      let stopping: Promise<number | undefined> | undefined;
      const r = await watchedFarmBuild(scratch, { tree, address, token: TOKEN, gxx, cacheDir: client().cacheDir }, (node) => {
        if (!stopping && node === "slow-1") stopping = stopDaemon(slow[0]!);
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(stopping, "slow-1 never started an action").toBeDefined();
      expect(await stopping).toBe(0);
      const retried = r.events.filter((e) => e.type === "action" && e.state === "retry");
      expect(retried.length).toBeGreaterThan(0);
      expect(retried[0]!.node).toBe("slow-1");
      expect(retried[0]!.error).toMatch(/slow-1 stopped/);
      expect(r.events.at(-1)).toMatchObject({ type: "summary", executed: 5, nodes: { "slow-2": 5 } });
      expect(await runProgram(join(tree, "geometry"))).toMatch(/circle/);
    } finally {
      await Promise.all(slow.map((d) => (d.proc.exitCode === undefined || d.proc.exitCode === null ? stopDaemon(d) : undefined)));
    }
  });

  it("evicts a silent node after its TTL and takes it back under its name when it speaks again", async () => {
    const d = nodes[2]!;
    const name = d.hello.name as string;
    d.proc.kill("SIGSTOP");
    try {
      const deadline = Date.now() + NODE_TTL_MS * 6;
      while ((await status()).nodes.some((n) => n.name === name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect((await status()).nodes.map((n) => n.name)).not.toContain(name);
    } finally {
      d.proc.kill("SIGCONT");
    }
    const deadline = Date.now() + NODE_TTL_MS * 6;
    while (!(await status()).nodes.some((n) => n.name === name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect((await status()).nodes.map((n) => n.name)).toContain(name);
    // And it still builds.
    const tree = copyFixture("multi-c", join(scratch.root, "after-eviction"));
    const b = await farmBuild(tree, ["--no-cache"]);
    expect(b.exitCode, b.stderr).toBe(0);
  });
});
