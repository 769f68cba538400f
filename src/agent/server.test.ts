// Tests of the agent server in-process, with a hand-written handler: concurrent calls, idle exit, fallback replies, stale sockets.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CallHandler, CompilerCall, CompilerReply } from "../cc/types.js";
import { silentLogger } from "../core/logger.js";
import { decodeReply, encodeRequest, FrameReader, type Reply, ReplyStatus } from "./protocol.js";
import { AgentAlreadyRunning, startAgent } from "./server.js";

const root = mkdtempSync(join(tmpdir(), "orion-agent-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshSocket = () => join(root, `s${++n}.sock`);

/** Echoes argv[1] on stdout after argv[2] ms, exits with argv[3]; "throw" as argv[1] fails the call. */
class EchoHandler implements CallHandler {
  inFlight = 0;
  maxInFlight = 0;
  async handle(call: CompilerCall): Promise<CompilerReply> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    await new Promise((r) => setTimeout(r, Number(call.argv[2] ?? 0)));
    this.inFlight--;
    if (call.argv[1] === "throw") throw new Error("handler bug");
    return { exitCode: Number(call.argv[3] ?? 0), stdout: Buffer.from(call.argv[1] ?? ""), stderr: Buffer.from(call.cwd) };
  }
}

function callAgent(socketPath: string, argv: string[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socketPath);
    const reader = new FrameReader();
    s.on("connect", () => s.write(encodeRequest({ argv, cwd: "/somewhere", env: { A: "1" } })));
    s.on("data", (b: Buffer) => {
      const [p] = reader.push(b);
      if (p) resolve(decodeReply(p));
    });
    s.on("error", reject);
    s.on("end", () => reject(new Error("closed without a reply")));
  });
}

describe("startAgent", () => {
  it("closes after a reply once its code is stale, so the next client starts a fresh agent; the reply still arrives", async () => {
    const socketPath = freshSocket();
    let stale = false;
    const agent = await startAgent({ socketPath, handler: new EchoHandler(), idleMs: 60_000, logger: silentLogger, isStale: () => stale });
    expect((await callAgent(socketPath, ["cc", "one"])).stdout.toString()).toBe("one");
    stale = true;
    const r = await callAgent(socketPath, ["cc", "two"]);
    expect([r.status, r.stdout.toString()]).toEqual([ReplyStatus.DONE, "two"]);
    await agent.closed;
    expect(existsSync(socketPath)).toBe(false);
  });

  it("hands a call back to the client (FALLBACK) when the handler says runInClient", async () => {
    const socketPath = freshSocket();
    const handler: CallHandler = { handle: async () => ({ exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), runInClient: true }) };
    const agent = await startAgent({ socketPath, handler, idleMs: 60_000, logger: silentLogger });
    try {
      expect((await callAgent(socketPath, ["cc", "-o", "app", "a.o"])).status).toBe(ReplyStatus.FALLBACK);
    } finally {
      await agent.close();
    }
  });

  it("answers REWRITE with the handler's command string and stderr, whatever else the reply says", async () => {
    const socketPath = freshSocket();
    const handler: CallHandler = { handle: async () => ({ exitCode: 7, stdout: Buffer.from("ignored"), stderr: Buffer.from("why\n"), runInClient: true, rewrite: "echo new" }) };
    const agent = await startAgent({ socketPath, handler, idleMs: 60_000, logger: silentLogger });
    try {
      const r = await callAgent(socketPath, ["orion-sh", "-c", "echo old"]);
      expect([r.status, r.exitCode, r.stdout.toString(), r.stderr.toString()]).toEqual([ReplyStatus.REWRITE, 0, "echo new", "why\n"]);
    } finally {
      await agent.close();
    }
  });

  it("serves many concurrent calls and writes its pid file", async () => {
    const socketPath = freshSocket();
    const handler = new EchoHandler();
    const agent = await startAgent({ socketPath, handler, idleMs: 60_000, logger: silentLogger, pid: 4242 });
    try {
      expect(readFileSync(`${socketPath}.pid`, "utf8").trim()).toBe("4242");
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => callAgent(socketPath, ["cc", `out${i}`, "30", String(i % 3)])));
      replies.forEach((r, i) => {
        expect(r).toMatchObject({ status: ReplyStatus.DONE, exitCode: i % 3 });
        expect(r.stdout.toString()).toBe(`out${i}`);
        expect(r.stderr.toString()).toBe("/somewhere");
      });
      expect(handler.maxInFlight).toBeGreaterThan(1);
    } finally {
      await agent.close();
    }
    expect(existsSync(socketPath)).toBe(false);
    expect(existsSync(`${socketPath}.pid`)).toBe(false);
  });

  it("answers FALLBACK when the handler throws, and keeps serving", async () => {
    const socketPath = freshSocket();
    const agent = await startAgent({ socketPath, handler: new EchoHandler(), idleMs: 60_000, logger: silentLogger });
    try {
      expect((await callAgent(socketPath, ["cc", "throw"])).status).toBe(ReplyStatus.FALLBACK);
      expect((await callAgent(socketPath, ["cc", "ok"])).stdout.toString()).toBe("ok");
    } finally {
      await agent.close();
    }
  });

  it("exits after idleMs without calls, not while a call is in flight", async () => {
    const socketPath = freshSocket();
    let idle = false;
    const agent = await startAgent({ socketPath, handler: new EchoHandler(), idleMs: 150, logger: silentLogger, onIdle: () => (idle = true) });
    // A call longer than idleMs must still be answered.
    const r = await callAgent(socketPath, ["cc", "slow", "400"]);
    expect(r.stdout.toString()).toBe("slow");
    expect(idle).toBe(false);
    const t0 = Date.now();
    await agent.closed;
    expect(idle).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(existsSync(socketPath)).toBe(false);
  });

  it("replaces a stale socket file, and refuses to start over a live agent", async () => {
    const socketPath = freshSocket();
    // A socket file nobody listens on, as a killed agent leaves it.
    spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`]);
    expect(existsSync(socketPath)).toBe(true);
    writeFileSync(`${socketPath}.pid`, "999999\n");
    const agent = await startAgent({ socketPath, handler: new EchoHandler(), idleMs: 60_000, logger: silentLogger });
    try {
      expect((await callAgent(socketPath, ["cc", "fresh"])).stdout.toString()).toBe("fresh");
      await expect(startAgent({ socketPath, handler: new EchoHandler(), idleMs: 60_000, logger: silentLogger })).rejects.toBeInstanceOf(AgentAlreadyRunning);
    } finally {
      await agent.close();
    }
  });
});
