// End-to-end: nodes fetch inputs from each other (P2P) — real `orion head` and `orion node` processes on
// 127.0.0.1, each node serving its store on its own port. Toolchains steer the work so that peers must
// talk: one node has only gcc (every compile and link), the other only ar (both archives), so each
// archive's objects live on the gcc node and each link's libraries on the ar node.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copyFixture, makeReference, orionBuild, type OrionEnv, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("farm-p2p");
const TOKEN = "p2p-e2e-token";
const daemons: Daemon[] = [];

afterAll(async () => {
  await Promise.all(daemons.filter((d) => d.hello.type === "registered").map((d) => stopDaemon(d)));
  await Promise.all(daemons.filter((d) => d.hello.type === "listening").map((d) => stopDaemon(d)));
  scratch.cleanup();
});

interface Farm {
  address: string;
  compiler: Daemon;
  archiver: Daemon;
}

/** A head, a node with only gcc and a node with only ar; `compilerArgs` are extra flags for the gcc node. */
async function startFarm(name: string, compilerArgs: string[] = []): Promise<Farm> {
  const head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, name, "head"), "--token", TOKEN]);
  daemons.push(head);
  const address = head.hello.grpc as string;
  const node = (role: string, tool: string, extra: string[]) =>
    startDaemon(scratch, [
      "node", "--head", address, "--token", TOKEN, "--name", `${name}-${role}`, "--slots", "1",
      "--data-dir", join(scratch.root, name, role), "--toolchain", tool, ...extra,
    ]);
  const [compiler, archiver] = await Promise.all([node("gcc", "gcc=/usr/bin/gcc", compilerArgs), node("ar", "ar=/usr/bin/ar", [])]);
  daemons.push(compiler, archiver);
  return { address, compiler, archiver };
}

/** The node's log lines (JSON), once `re` shows up in them (logs are written asynchronously: waits up to 5 s). */
async function logLines(d: Daemon, re: RegExp): Promise<Record<string, unknown>[]> {
  const read = () => (existsSync(d.logFile) ? readFileSync(d.logFile, "utf8") : "");
  const deadline = Date.now() + 5_000;
  while (!re.test(read()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return read()
    .split("\n")
    .filter((l) => re.test(l))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const client = (name: string): OrionEnv => ({ cacheDir: join(scratch.root, name, "client-cache"), configHome: scratch.configHome, driver: "graph" });

describe("nodes fetching inputs from their peers", () => {
  it("each node serves its blobs on its own port and announces it", async () => {
    const farm = await startFarm("hello");
    for (const n of [farm.compiler, farm.archiver]) expect(n.hello.blobs).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(farm.compiler.hello.blobs).not.toBe(farm.archiver.hello.blobs);
  });

  it("builds multi-c with the archives' objects and the links' libraries coming from the peer that made them, not the head", async () => {
    const farm = await startFarm("p2p");
    const tree = join(scratch.root, "p2p", "tree");
    const ref = await makeReference("multi-c", join(scratch.root, "p2p", "ref"), ["app1/app1", "app2/app2"]);
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, client("p2p"), ["--head", farm.address, "--token", TOKEN]);
    expect(b.exitCode, b.stderr).toBe(0);
    // 28 compiles and 2 links on the gcc node, 2 archives on the ar node.
    expect(b.summary.nodes).toEqual({ "p2p-gcc": 30, "p2p-ar": 2 });
    for (const p of ["app1/app1", "app2/app2"]) expect(await runProgram(join(tree, p))).toBe(ref.stdout.get(p));

    // The ar node asked the gcc node for the 24 library objects and needed nothing from the head…
    const arFetches = await logLines(farm.archiver, /inputs fetched from peers/);
    expect(arFetches.reduce((n, l) => n + (l.blobs as number), 0)).toBe(24);
    expect(arFetches.every((l) => l.fromHead === 0 && (l.peers as string[]).join() === "p2p-gcc")).toBe(true);
    // …and the gcc node got the two libraries from the ar node once (the second link found them in its store).
    const gccFetches = await logLines(farm.compiler, /inputs fetched from peers/);
    expect(gccFetches.reduce((n, l) => n + (l.blobs as number), 0)).toBe(2);
    expect(gccFetches.every((l) => l.fromHead === 0 && (l.peers as string[]).join() === "p2p-ar")).toBe(true);

    // A second gcc node joins, holding nothing; the same tree again without the cache: its share of the
    // compiles runs against a source context the first gcc node holds, which sends it as one tar stream.
    const late = await startDaemon(scratch, [
      "node", "--head", farm.address, "--token", TOKEN, "--name", "p2p-late", "--slots", "1",
      "--data-dir", join(scratch.root, "p2p", "late"), "--toolchain", "gcc=/usr/bin/gcc",
    ]);
    daemons.push(late);
    copyFixture("multi-c", tree);
    const again = await orionBuild(tree, client("p2p"), ["--head", farm.address, "--token", TOKEN, "--no-cache"]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.summary.nodes["p2p-late"], JSON.stringify(again.summary.nodes)).toBeGreaterThan(0);
    const lateFetches = await logLines(late, /inputs fetched from peers/);
    expect(lateFetches.length).toBeGreaterThan(0);
    expect(lateFetches[0]!.peers).toEqual(["p2p-gcc"]);
    expect(lateFetches[0]!.fromHead).toBe(0);
    expect(await logLines(farm.compiler, /sent a tree as one tar stream/)).not.toEqual([]);
    for (const p of ["app1/app1", "app2/app2"]) expect(await runProgram(join(tree, p))).toBe(ref.stdout.get(p));
  });

  it("falls back to the head when the peer cannot be reached: the build still succeeds", async () => {
    // The gcc node announces a port nobody listens on.
    const farm = await startFarm("dead", ["--advertise", "127.0.0.1:1"]);
    const tree = join(scratch.root, "dead", "tree");
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, client("dead"), ["--head", farm.address, "--token", TOKEN]);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.summary.nodes).toEqual({ "dead-gcc": 30, "dead-ar": 2 });
    expect(await runProgram(join(tree, "app2/app2"))).toBeTruthy();
    expect((await logLines(farm.archiver, /a peer could not send inputs/)).length).toBeGreaterThan(0);
    // The first archive tried the peer and left its 12 objects to the head; the peer then rests, so the
    // second archive does not ask it at all.
    const none = await logLines(farm.archiver, /no inputs from peers/);
    expect(none.map((l) => [l.blobs, l.fromHead])).toEqual([[0, 12]]);
    expect(await logLines(farm.archiver, /inputs fetched from peers/)).toEqual([]);
  });
});
