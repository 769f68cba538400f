// End-to-end: the warm build server. `bin/orion build` (the sh launcher, then the native client orion-build) with no
// agent running builds in its own Node process and leaves the per-user agent behind; the next builds are served by that
// agent — same outputs, events and exit codes — and what it cannot serve, or a dead agent, still builds.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, copyFixture, differingFiles, makeReference, ORION_BIN, parseEvents, runProgram, Scratch } from "./helpers.js";

const scratch = new Scratch("build-server");
const sock = join(scratch.root, "agent.sock");
const env = cleanEnv({
  ORION_BUILD_SERVER: undefined,
  ORION_AGENT_SOCKET: sock,
  // The agent logs each build it serves at info.
  ORION_LOG_LEVEL: "info",
  ORION_CACHE_DIR: join(scratch.root, "cache"),
  XDG_CONFIG_HOME: scratch.configHome,
  XDG_CACHE_HOME: join(scratch.root, "xdg-cache"),
});
const TIMEOUT = 120_000;

function stopAgent(): void {
  try {
    process.kill(Number(readFileSync(`${sock}.pid`, "utf8")), "SIGTERM");
  } catch {
    /* not running */
  }
}
afterAll(() => {
  stopAgent();
  scratch.cleanup();
});

/** `bin/orion build DIR --json ARGS` as a user types it: through the launcher and the native client. */
function build(dir: string, extra: string[] = [], more: Record<string, string | undefined> = {}) {
  return execa(ORION_BIN, ["build", dir, "--json", ...extra], { env: { ...env, ...more }, extendEnv: false, reject: false, stdin: "ignore", timeout: 60_000 });
}

/** How many builds the agent has served, from its log. */
function served(): number {
  const log = `${sock}.log`;
  return existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => l.includes('"served a build"')).length : 0;
}

async function waitForAgent(): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(`${sock}.pid`); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(`${sock}.pid`), "the first build left no agent running").toBe(true);
}

describe("orion build through the warm build server", () => {
  let ref: Awaited<ReturnType<typeof makeReference>>;
  const tree = join(scratch.root, "multi-c");
  beforeAll(async () => {
    ref = await makeReference("multi-c", tree, ["app1/app1", "app2/app2"]);
  }, TIMEOUT);

  it(
    "the first build runs in its own process and starts the agent; the next ones are served, with make's outputs",
    async () => {
      copyFixture("multi-c", tree);
      const first = await build(tree);
      expect(first.exitCode, first.stderr).toBe(0);
      expect(served()).toBe(0);
      await waitForAgent();
      // Started with V8's memory reducer off (src/agent/command.ts AGENT_NODE_FLAGS: an idle agent stays as fast).
      const pid = Number(readFileSync(`${sock}.pid`, "utf8"));
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toContain("--no-memory-reducer");

      // A fresh copy at the same path: served, every action a cache hit, make's bytes.
      copyFixture("multi-c", tree);
      const warm = await build(tree);
      expect(warm.exitCode, warm.stderr).toBe(0);
      expect(served()).toBe(1);
      const { summary } = parseEvents(warm.stdout);
      expect(summary.executed).toBe(0);
      expect(summary.cacheHits).toBe(summary.actions);
      expect(differingFiles(tree, ref.outputs)).toEqual([]);
      expect(await runProgram(join(tree, "app1/app1"))).toBe(ref.stdout.get("app1/app1"));

      // An edit: the served build compiles it (the agent's warm stat cache notices the change).
      appendFileSync(join(tree, "app2/table.c"), "\nint served_edit;\n");
      const edit = await build(tree);
      expect(edit.exitCode, edit.stderr).toBe(0);
      expect(served()).toBe(2);
      expect(parseEvents(edit.stdout).summary.executed).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it(
    "a served build that fails prints the compiler's diagnostics and exits 1",
    async () => {
      const bad = copyFixture("compile-error", join(scratch.root, "compile-error"));
      const before = served();
      const r = await build(bad);
      expect(served()).toBe(before + 1);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/bad\.c.*error/);
    },
    TIMEOUT,
  );

  it(
    "Ctrl-C on the client stops the served build: exit 130, the step it was running stopped",
    async () => {
      const slow = copyFixture("slow-c", join(scratch.root, "slow-c"));
      const before = served();
      const child = build(slow, ["--", "GEN_SLEEP=60"]);
      let out = "";
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("gen.sh") && !child.killed) child.kill("SIGINT");
      });
      const started = Date.now();
      const r = await child;
      expect(served()).toBe(before + 1);
      expect(r.exitCode, r.stderr).toBe(130);
      expect(Date.now() - started, "the step's 60 s sleep ran out instead").toBeLessThan(30_000);
      expect(r.stderr).toContain("interrupted");
    },
    TIMEOUT,
  );

  it(
    "what the agent does not serve (--driver graph), and a build with the agent gone, run in the client's own process",
    async () => {
      copyFixture("multi-c", tree);
      const before = served();
      const graph = await build(tree, ["--driver", "graph"]);
      expect(graph.exitCode, graph.stderr).toBe(0);
      expect(served()).toBe(before);
      expect(differingFiles(tree, ref.outputs)).toEqual([]);

      stopAgent();
      for (let i = 0; i < 100 && existsSync(`${sock}.pid`); i++) await new Promise((r) => setTimeout(r, 50));
      copyFixture("multi-c", tree);
      const alone = await build(tree, [], { ORION_BUILD_SERVER: "0" });
      expect(alone.exitCode, alone.stderr).toBe(0);
      expect(parseEvents(alone.stdout).summary.executed).toBe(0);
      expect(existsSync(`${sock}.pid`), "ORION_BUILD_SERVER=0 started an agent").toBe(false);
    },
    TIMEOUT,
  );
});
