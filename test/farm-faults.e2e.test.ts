// End-to-end: a farm losing its nodes — a real `orion head` and `orion node` processes on 127.0.0.1 port 0. The head's
// node TTL is ten minutes here, so only a node's dropped connection can explain its work coming back within the test.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFixture, orionBuild, type OrionEnv, runOrion, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, startSlowGxxNodes, stopDaemon, watchedFarmBuild } from "./farm-helpers.js";

const scratch = new Scratch("farm-faults");
const TOKEN = "farm-faults-token";
let head: Daemon;
let address = "";

const client = (): OrionEnv => ({ cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" });

beforeAll(async () => {
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN, "--heartbeat-ms", "200", "--node-ttl-ms", "600000"]);
  address = head.hello.grpc as string;
}, 60_000);

afterAll(async () => {
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

const running = (d: Daemon) => d.proc.exitCode === null || d.proc.exitCode === undefined;

describe("a farm that loses its nodes", () => {
  it("re-queues the work of a node killed with SIGKILL at once, on its dropped connection, not its TTL", async () => {
    const { gxx, nodes: slow } = await startSlowGxxNodes(scratch, address, TOKEN, ["slow-1", "slow-2"]);
    try {
      const tree = copyFixture("cxx", join(scratch.root, "cxx-killed"));
      // Kill slow-1 outright as soon as it has started something: no Leave, no goodbye.
      let killed = false;
      const r = await watchedFarmBuild(scratch, { tree, address, token: TOKEN, gxx, cacheDir: client().cacheDir }, (node) => {
        if (!killed && node === "slow-1") killed = slow[0]!.proc.kill("SIGKILL");
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(killed, "slow-1 never started an action").toBe(true);
      const retried = r.events.filter((e) => e.type === "action" && e.state === "retry");
      expect(retried.map((e) => [e.node, e.error])).toEqual([["slow-1", "node slow-1 dropped its connection"]]);
      expect(r.events.at(-1)).toMatchObject({ type: "summary", executed: 5, failed: 0, nodes: { "slow-2": 5 } });
      expect(await runProgram(join(tree, "geometry"))).toMatch(/circle/);
    } finally {
      await Promise.all(slow.filter(running).map((d) => stopDaemon(d)));
    }
  });

  it("with no node left, waits --no-node-timeout for one, then exits 3 with one line saying why", async () => {
    const tree = copyFixture("multi-c", join(scratch.root, "no-node"));
    const b = await orionBuild(tree, client(), ["--head", address, "--token", TOKEN, "--no-node-timeout", "1s", "--no-cache"]);
    expect(b.exitCode, b.stderr).toBe(3);
    const lines = b.stderr.split("\n").filter((l) => l.includes("no live node"));
    expect(lines).toEqual([expect.stringMatching(/no live node could run the build's actions for 1 s \(no node is registered with the head\)/)]);
  });

  it("a node that registers while the build waits takes its work", async () => {
    const tree = copyFixture("multi-c", join(scratch.root, "late-node"));
    const build = orionBuild(tree, client(), ["--head", address, "--token", TOKEN, "--no-node-timeout", "2m", "--no-cache"]);
    await new Promise((r) => setTimeout(r, 1_500));
    const late = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--name", "late", "--slots", "2", "--data-dir", join(scratch.root, "late")]);
    try {
      const b = await build;
      expect(b.exitCode, b.stderr).toBe(0);
      expect(Object.keys(b.summary.nodes)).toEqual(["late"]);
    } finally {
      await stopDaemon(late);
    }
  });

  it("refuses a --no-node-timeout that is not a duration: one line, exit 2", async () => {
    const r = await runOrion(["build", scratch.dir("empty"), "--head", address, "--no-node-timeout", "soon"], client());
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/--no-node-timeout: "soon" is not a duration \(a number and a unit: 500ms, 90s, 2m, 1h, 30d\)/)]);
  });
});
