// End-to-end: warm farm builds (a real head and two nodes, a fresh client cache each time) of a project whose
// host step needs an action's output — `ranlib` on the archive `ar` just wrote — loop without one failure.
// The host step's lease and the events of the actions before it travel as separate calls; the step must
// start only once those outputs are written into the tree. Lua 5.4 itself (`make posix`) loops 50 times
// opt-in (ORION_TEST_LUA=1, `make test-lua`: fetches Lua once, scripts/fetch-lua, as root).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFixture, type OrionBuild, orionBuild, REPO, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("farm-race");
const TOKEN = "farm-race-token";
const luaEnabled = process.env.ORION_TEST_LUA === "1";
/** Warm builds of the fixture in the default suite, and of Lua in the opt-in run. */
const FIXTURE_ROUNDS = Number(process.env.ORION_TEST_RACE_ROUNDS ?? 20);
const LUA_ROUNDS = Number(process.env.ORION_TEST_LUA_ROUNDS ?? 50);

let head: Daemon;
let address = "";
const nodes: Daemon[] = [];
let round = 0;

/** One build over the farm with a client cache nobody used before (so nothing is in the tree but what the build writes). */
async function farmBuild(tree: string, makeArgs: string[] = []): Promise<OrionBuild> {
  const cacheDir = join(scratch.root, `client-cache-${++round}`);
  const b = await orionBuild(tree, { cacheDir, configHome: scratch.configHome, driver: "graph" }, ["--head", address, "--token", TOKEN, ...(makeArgs.length ? ["--", ...makeArgs] : [])]);
  return b;
}

function describeBuild(b: OrionBuild): string {
  return `exit ${b.exitCode}: ${JSON.stringify(b.summary)}\n${b.stderr.split("\n").slice(-15).join("\n")}`;
}

/** `rounds` warm builds of a fresh copy at the same path; returns the failures, each described. */
async function warmLoop(rounds: number, fresh: () => Promise<void>, tree: string, makeArgs: string[], check: (b: OrionBuild) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  for (let i = 1; i <= rounds; i++) {
    await fresh();
    const b = await farmBuild(tree, makeArgs);
    if (b.exitCode !== 0) {
      failures.push(`round ${i}: ${describeBuild(b)}`);
      continue;
    }
    await check(b);
  }
  return failures;
}

beforeAll(async () => {
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  nodes.push(
    ...(await Promise.all(
      [1, 2].map((i) => startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--data-dir", join(scratch.root, `node-${i}`)])),
    )),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((d) => stopDaemon(d)));
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("a host step after a cached archive, on a warm farm", () => {
  it(`runs ranlib on the archive in ${FIXTURE_ROUNDS} of ${FIXTURE_ROUNDS} warm builds`, async () => {
    const tree = join(scratch.root, "archive-ranlib");
    copyFixture("archive-ranlib", tree);
    const cold = await farmBuild(tree);
    expect(cold.exitCode, describeBuild(cold)).toBe(0);
    expect(cold.summary.executed).toBeGreaterThan(0);
    const want = await runProgram(join(tree, "src/shape"));
    expect(want).toMatch(/^shape \d+$/);

    const failures = await warmLoop(FIXTURE_ROUNDS, async () => void copyFixture("archive-ranlib", tree), tree, [], async (b) => {
      // Warm: every action a cache hit, so the archive reaches the tree only through the client's writer.
      expect(b.summary.executed, describeBuild(b)).toBe(0);
      expect(b.summary.hostSteps).toBe(1);
      expect(b.events.some((e) => e.type === "host-step" && e.cmd === "ranlib libshape.a" && e.state === "finished")).toBe(true);
      expect(await runProgram(join(tree, "src/shape"))).toBe(want);
    });
    expect(failures, failures.join("\n")).toEqual([]);
  }, 300_000);
});

describe.skipIf(!luaEnabled)("Lua 5.4 (make posix), opt-in", () => {
  it(`builds warm over the farm in ${LUA_ROUNDS} of ${LUA_ROUNDS} rounds`, async () => {
    const tree = join(scratch.root, "lua");
    const extract = async () => void (await execa(join(REPO, "scripts", "fetch-lua"), ["--extract", tree], { stdio: ["ignore", "ignore", "pipe"] }));
    await extract();
    const cold = await farmBuild(tree, ["posix"]);
    expect(cold.exitCode, describeBuild(cold)).toBe(0);
    expect(existsSync(join(tree, "src/lua"))).toBe(true);
    const hello = async () => (await execa(join(tree, "src/lua"), ["-e", "print(string.format('lua %d', 6 * 7))"], { reject: false })).stdout;
    expect(await hello()).toBe("lua 42");

    const failures = await warmLoop(LUA_ROUNDS, extract, tree, ["posix"], async (b) => {
      expect(b.summary.executed, describeBuild(b)).toBe(0);
      expect(await hello()).toBe("lua 42");
    });
    expect(failures, `${failures.length} of ${LUA_ROUNDS} warm builds failed:\n${failures.join("\n")}`).toEqual([]);
  }, 30 * 60_000);
});
