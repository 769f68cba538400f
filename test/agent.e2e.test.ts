// End-to-end: `orion cc` through the real native client, launcher and agent — results, exit codes, start-up races, a killed agent, idle exit, fallbacks.
import { CcStats } from "../src/cc/stats.js";
import { socketAnswers } from "../src/agent/server.js";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, copyFixture, differingFiles, makeReference, ORION_BIN, REPO, runProgram, Scratch } from "./helpers.js";
import { agentPids, killAgent, pidFile, stopAgents } from "./agent-helpers.js";

const scratch = new Scratch("agent");
/** Every socket a test used: afterEach stops whatever agent runs on it. */
const sockets: string[] = [];

beforeAll(() => {
  // The client is a build product like dist/; make it if this checkout has not yet.
  execFileSync("make", ["-s", "native/build/orion-cc"], { cwd: REPO, stdio: "inherit" });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) await stopAgents(s);
});
afterAll(() => scratch.cleanup());

let n = 0;
/** A fresh socket, cache dir and environment; the pass-through handler keeps these tests about the plumbing. */
function fresh(extra: Record<string, string | undefined> = {}): { socket: string; env: NodeJS.ProcessEnv; dir: string } {
  const dir = scratch.dir(`t${++n}`);
  const socket = join(dir, "agent.sock");
  sockets.push(socket);
  const env = cleanEnv({ ORION_AGENT_SOCKET: socket, ORION_CACHE_DIR: join(dir, "cache"), XDG_CONFIG_HOME: scratch.configHome, ORION_AGENT_HANDLER: "passthrough", ORION_AGENT_IDLE_MS: "60000", ...extra });
  return { socket, env, dir };
}

/**
 * The process that ran a command, given the command's parent pid: the agent starts tools through its native spawn
 * server (orion-spawn), so a tool whose parent is that server was run by the server's parent.
 */
function runBy(ppid: number): number {
  try {
    const stat = readFileSync(`/proc/${ppid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (comm === "orion-spawn") return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    /* gone: not a spawn server we could ask about */
  }
  return ppid;
}

async function orionCc(args: string[], env: NodeJS.ProcessEnv, cwd = REPO) {
  const r = await execa(ORION_BIN, ["cc", ...args], { cwd, env, extendEnv: false, reject: false, stdin: "ignore", encoding: "buffer", stripFinalNewline: false, timeout: 45_000 });
  return { exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

describe("orion cc through the agent", () => {
  it("compiles an object byte-identical to gcc's, and the call is served by the agent", async () => {
    const { env, socket, dir } = fresh();
    const src = copyFixture("multi-c", join(dir, "src"));
    const args = ["-O2", "-g", "-Wall", "-c", "lib/add.c"];
    execFileSync("gcc", [...args, "-o", "ref.o"], { cwd: src, env: cleanEnv() });
    const r = await orionCc(["gcc", ...args, "-o", "via.o"], env, src);
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    expect(readFileSync(join(src, "via.o")).equals(readFileSync(join(src, "ref.o")))).toBe(true);
    // The agent started and is the parent of the commands it runs.
    const agent = pidFile(socket);
    expect(agent).toBeGreaterThan(0);
    const ppid = await orionCc(["sh", "-c", "echo $PPID"], env);
    expect(runBy(Number(ppid.stdout.toString().trim()))).toBe(agent);
  });

  it("with the real CcService handler (when built), a compile through the agent matches gcc's object", async () => {
    const { env, socket, dir } = fresh({ ORION_AGENT_HANDLER: undefined });
    const src = copyFixture("multi-c", join(dir, "src"));
    const args = ["-O2", "-g", "-Wall", "-c", "util/hash.c"];
    execFileSync("gcc", [...args, "-o", "ref.o"], { cwd: src, env: cleanEnv() });
    for (const out of ["via1.o", "via2.o"]) {
      const r = await orionCc(["gcc", ...args, "-o", out], env, src);
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      expect(readFileSync(join(src, out)).equals(readFileSync(join(src, "ref.o"))), out).toBe(true);
    }
    expect(agentPids(socket)).toHaveLength(1);
    const serviceBuilt = existsSync(join(REPO, "dist", "src", "cc", "service.js"));
    const log = existsSync(`${socket}.log`) ? readFileSync(`${socket}.log`, "utf8") : "";
    if (serviceBuilt) expect(log).not.toContain("the cc service is unavailable");
    // A call Orion does not cache is handed back: the client execs it itself (its parent is this test, not the
    // agent), and it counts as uncacheable, not as a fallback.
    const before = CcStats.readCounts(join(dir, "cache"));
    const ppid = await orionCc(["sh", "-c", "echo $PPID"], env);
    expect(Number(ppid.stdout.toString().trim())).toBe(process.pid);
    const after = CcStats.readCounts(join(dir, "cache"));
    expect([after.uncacheable - before.uncacheable, after.fallbacks - before.fallbacks]).toEqual([1, 0]);
  });

  it("passes exit codes, stdout and stderr bytes through (a failing compile)", async () => {
    const { env, dir } = fresh();
    const src = copyFixture("compile-error", join(dir, "src"));
    const direct = await execa("gcc", ["-O2", "-Wall", "-c", "bad.c", "-o", "bad.o"], { cwd: src, env: cleanEnv(), extendEnv: false, reject: false, encoding: "buffer", stripFinalNewline: false });
    const r = await orionCc(["gcc", "-O2", "-Wall", "-c", "bad.c", "-o", "bad.o"], env, src);
    expect(r.exitCode).toBe(direct.exitCode);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString("latin1")).toBe(Buffer.from(direct.stderr).toString("latin1"));
    expect(r.stderr.length).toBeGreaterThan(0);
    const mixed = await orionCc(["sh", "-c", "printf 'o\\0ut'; printf 'e\\377rr' >&2; exit 42"], env);
    expect(mixed.exitCode).toBe(42);
    expect(mixed.stdout.equals(Buffer.from("o\0ut", "latin1"))).toBe(true);
    expect(mixed.stderr.equals(Buffer.from("e\xffrr", "latin1"))).toBe(true);
    const missing = await orionCc(["no-such-compiler-xyz", "-c", "x.c"], env);
    expect(missing.exitCode).toBe(127);
  });

  it("32 parallel first calls start exactly one agent, which serves them all", async () => {
    const { env, socket } = fresh();
    const results = await Promise.all(Array.from({ length: 32 }, () => orionCc(["sh", "-c", "echo $PPID"], env)));
    for (const r of results) expect(r.exitCode, r.stderr.toString()).toBe(0);
    const agents = agentPids(socket);
    expect(agents).toHaveLength(1);
    expect(pidFile(socket)).toBe(agents[0]);
    // Every call ran as the agent's child: none fell back to running directly.
    expect(new Set(results.map((r) => runBy(Number(r.stdout.toString().trim()))))).toEqual(new Set(agents));
  });

  it("a killed agent costs nothing: the next call restarts it", async () => {
    const { env, socket } = fresh();
    expect((await orionCc(["true"], env)).exitCode).toBe(0);
    const first = pidFile(socket)!;
    expect(killAgent(socket)).toBe(true);
    expect(await waitFor(() => agentPids(socket).length === 0, 5_000)).toBe(true);
    // A process being killed drops out of /proc's command lines a moment before its listening socket closes; a
    // call in that moment connects, gets nothing, and (correctly) runs the compiler itself — not what this checks.
    const deadline = Date.now() + 5_000;
    while ((await socketAnswers(socket)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const r = await orionCc(["sh", "-c", "echo $PPID"], env);
    expect(r.exitCode).toBe(0);
    const second = pidFile(socket)!;
    expect(second).not.toBe(first);
    expect(runBy(Number(r.stdout.toString().trim()))).toBe(second);
  });

  it("make -j4 CC='orion cc gcc' succeeds while its agent is killed again and again", async () => {
    const { env, socket, dir } = fresh();
    const programs = ["app1/app1", "app2/app2"];
    const ref = await makeReference("multi-c", join(dir, "tree"), programs);
    const tree = copyFixture("multi-c", join(dir, "tree"));
    const build = execa("make", ["-C", tree, "-j4", `CC=${ORION_BIN} cc gcc`], { env, extendEnv: false, reject: false, stdin: "ignore", timeout: 60_000 });
    let kills = 0;
    const killer = setInterval(() => {
      if (killAgent(socket)) kills++;
    }, 40);
    const r = await build.finally(() => clearInterval(killer));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(kills).toBeGreaterThan(0);
    expect(differingFiles(tree, ref.outputs)).toEqual([]);
    for (const p of programs) expect(await runProgram(join(tree, p))).toBe(ref.stdout.get(p));
  });

  it("ORION_NO_AGENT=1 runs the compiler directly and starts no agent", async () => {
    const { env, socket } = fresh({ ORION_NO_AGENT: "1" });
    const r = await orionCc(["sh", "-c", "echo ok; exit 3"], env);
    expect(r.exitCode).toBe(3);
    expect(r.stdout.toString()).toBe("ok\n");
    expect(existsSync(socket)).toBe(false);
    expect(agentPids(socket)).toEqual([]);
  });

  it("a source on stdin (a configure probe) is compiled here, with this process's stdin, and starts no agent", async () => {
    const { env, socket, dir } = fresh();
    const out = join(dir, "probe");
    const ok = await execa(ORION_BIN, ["cc", "gcc", "-x", "c", "-", "-o", out], { env, extendEnv: false, reject: false, input: "int main(void) { return 0; }\n" });
    expect(ok.exitCode).toBe(0);
    expect(existsSync(out)).toBe(true);
    const bad = await execa(ORION_BIN, ["cc", "gcc", "-x", "c", "-", "-o", out], { env, extendEnv: false, reject: false, input: "int main(void) { return x; }\n" });
    expect(bad.exitCode).toBe(1);
    expect(String(bad.stderr)).toMatch(/<stdin>:1:\d+: error:/);
    expect(agentPids(socket)).toEqual([]);
  });

  it("falls back to running the compiler when the agent cannot start", async () => {
    const { env, socket } = fresh({ ORION_NODE: "/nonexistent/node" });
    const r = await orionCc(["sh", "-c", "echo direct"], env);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("direct\n");
    expect(existsSync(socket)).toBe(false);
  });

  it("the agent exits after its idle time (ORION_AGENT_IDLE_MS, and `orion agent --idle-ms`)", async () => {
    const viaClient = fresh({ ORION_AGENT_IDLE_MS: "300" });
    expect((await orionCc(["true"], viaClient.env)).exitCode).toBe(0);
    const pid = pidFile(viaClient.socket)!;
    expect(pid).toBeGreaterThan(0);
    expect(await waitFor(() => agentPids(viaClient.socket).length === 0, 10_000)).toBe(true);
    expect(existsSync(viaClient.socket)).toBe(false);
    expect(existsSync(`${viaClient.socket}.pid`)).toBe(false);

    const byHand = fresh();
    const started = await execa(ORION_BIN, ["agent", "--socket", byHand.socket, "--idle-ms", "300"], { env: byHand.env, extendEnv: false, reject: false, stdin: "ignore", timeout: 20_000 });
    expect(started.exitCode, started.stderr).toBe(0);
    expect(started.stdout.trim()).toBe(byHand.socket);
    expect(agentPids(byHand.socket)).toHaveLength(1);
    expect(await waitFor(() => agentPids(byHand.socket).length === 0, 10_000)).toBe(true);
    expect(existsSync(byHand.socket)).toBe(false);
  });

  it("a masquerade link named gcc runs the real gcc through the agent, not itself", async () => {
    const { env, socket, dir } = fresh();
    const masq = join(dir, "masq");
    mkdirSync(masq);
    symlinkSync(ORION_BIN, join(masq, "gcc"));
    const src = copyFixture("multi-c", join(dir, "src"));
    execFileSync("gcc", ["-O2", "-c", "lib/sub.c", "-o", "ref.o"], { cwd: src, env: cleanEnv() });
    const r = await execa("gcc", ["-O2", "-c", "lib/sub.c", "-o", "via.o"], { cwd: src, env: { ...env, PATH: `${masq}:${env.PATH}` }, extendEnv: false, reject: false, stdin: "ignore", timeout: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(join(src, "via.o")).equals(readFileSync(join(src, "ref.o")))).toBe(true);
    expect(agentPids(socket)).toHaveLength(1);
  });
});
