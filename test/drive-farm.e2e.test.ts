// make drives a farm build: a real head and two nodes on loopback; make's compiles (sub-make and CMake ones included)
// reach the nodes through the shims, links and archives run on the client, and the results are make's.
import { execa } from "execa";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, copyFixture, expectBuildOk, FIXTURES, orionBuild, outcomes, programOutputs, runMake, Scratch, type OrionEnv } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("drive-farm");
const TOKEN = "drive-farm-token";
let head: Daemon;
let address = "";
const nodes: Daemon[] = [];
const client = (name: string): OrionEnv => ({ cacheDir: join(scratch.root, `client-${name}`), configHome: scratch.configHome });

beforeAll(async () => {
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  nodes.push(
    ...(await Promise.all([1, 2].map((i) => startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--data-dir", join(scratch.root, `node-${i}`)])))),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((d) => stopDaemon(d)));
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

const farm = ["--driver", "make"];

describe("make drives a farm build", () => {
  it("multi-c: compiles run on the nodes, the rest here; outputs equal make's; a new client finds the farm's cache", async () => {
    const dir = copyFixture("multi-c", join(scratch.root, "multi-c"));
    const b = await orionBuild(dir, client("a"), [...farm, "--head", address, "--token", TOKEN]);
    expectBuildOk(b);
    const finished = b.events.filter((e) => e.type === "action" && e.state === "finished");
    const compiledOn = new Set(finished.filter((e) => e.kind === "compile").map((e) => e.node));
    const names = nodes.map((n) => n.hello.name as string);
    expect([...compiledOn].every((n) => names.includes(n)), JSON.stringify([...compiledOn])).toBe(true);
    expect(finished.filter((e) => e.kind === "compile")).toHaveLength(28);
    const ours = await programOutputs(dir, ["app1/app1", "app2/app2"]);
    const plain = copyFixture("multi-c", join(scratch.root, "multi-c-make"));
    expect((await runMake(plain)).exitCode).toBe(0);
    expect(ours).toEqual(await programOutputs(plain, ["app1/app1", "app2/app2"]));

    // Another client, empty cache, same path: every compile is the farm's cache hit.
    copyFixture("multi-c", dir);
    const other = await orionBuild(dir, client("b"), [...farm, "--head", address, "--token", TOKEN]);
    expectBuildOk(other);
    expect(outcomes(other.events).cached.filter((l) => l.startsWith("CC "))).toHaveLength(28);
  });

  // CMake names sources and include dirs by absolute path, which a node's sandbox (the context at another path) cannot
  // take: these compiles run here today, correctly. Running them on nodes needs the context at the same path there.
  it("a CMake build dir over the farm builds as cmake does (its compiles reach the build by absolute /usr/bin/cc)", async () => {
    const src = join(scratch.root, "cmake-src");
    cpSync(join(FIXTURES, "cmake-lib"), src, { recursive: true });
    const build = join(scratch.root, "cmake-build");
    expect((await execa("cmake", ["-S", src, "-B", build], { env: cleanEnv(), extendEnv: false, reject: false })).exitCode).toBe(0);
    const b = await orionBuild(build, client("c"), [...farm, "--head", address, "--token", TOKEN]);
    expectBuildOk(b);
    const compiles = b.events.filter((e) => e.type === "action" && e.kind === "compile" && (e.state === "finished" || e.state === "cached"));
    expect(compiles).toHaveLength(4);
    expect((await execa(join(build, "app"), { env: cleanEnv({ LD_LIBRARY_PATH: build }) })).stdout).toMatch(/^orionfix 1\.2\.3: square 9\.0/);
  });
});
