// End-to-end: the native orion-sh shim against the real agent server with a scripted handler — DONE, FALLBACK and REWRITE replies, sh's flags, the paths that never reach the socket, and make calling it as its SHELL.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa, type Options } from "execa";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startAgent, type Agent } from "../src/agent/server.js";
import type { CallHandler, CompilerCall, CompilerReply } from "../src/cc/types.js";
import { silentLogger } from "../src/core/logger.js";
import { cleanEnv, REPO, Scratch } from "./helpers.js";

const SH = join(REPO, "native", "build", "orion-sh");
const scratch = new Scratch("orion-sh");
const socket = join(scratch.root, "build.sock");

/** Records every call and answers with `respond`, which each test sets (default: run it yourself). */
class ScriptedHandler implements CallHandler {
  calls: CompilerCall[] = [];
  respond: (call: CompilerCall) => Partial<CompilerReply> | Promise<Partial<CompilerReply>> = () => ({ runInClient: true });
  async handle(call: CompilerCall): Promise<CompilerReply> {
    this.calls.push(call);
    return { exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), ...(await this.respond(call)) };
  }
}

const handler = new ScriptedHandler();
let agent: Agent;

beforeAll(async () => {
  // The shim is a build product like dist/; make it if this checkout has not yet.
  execFileSync("make", ["-s", "native/build/orion-sh"], { cwd: REPO, stdio: "inherit" });
  agent = await startAgent({ socketPath: socket, handler, idleMs: 600_000, logger: silentLogger });
});
afterAll(async () => {
  await agent?.close();
  scratch.cleanup();
});
beforeEach(() => {
  handler.calls = [];
  handler.respond = () => ({ runInClient: true });
});

/** Runs the shim with the build's socket in its environment (plus `env`); never throws on a failing exit. */
function sh(args: string[], env: Record<string, string | undefined> = {}, options: Options = {}) {
  return execa(SH, args, { env: cleanEnv({ ORION_AGENT_SOCKET: socket, ...env }), extendEnv: false, reject: false, timeout: 20_000, stripFinalNewline: false, ...options });
}

describe("orion-sh -c calls", () => {
  it("replays a DONE reply: its stdout, its stderr and its exit code", async () => {
    handler.respond = () => ({ exitCode: 3, stdout: Buffer.from("from the build\n"), stderr: Buffer.from("warning: x\n") });
    const r = await sh(["-c", "echo never"]);
    expect([r.stdout, r.stderr, r.exitCode]).toEqual(["from the build\n", "warning: x\n", 3]);
    expect(handler.calls.map((c) => c.argv)).toEqual([["orion-sh", "-c", "echo never"]]);
  });

  it("fails the line when the build answers DONE with an exit code no shell can return", async () => {
    handler.respond = () => ({ exitCode: 256 });
    expect((await sh(["-c", "true"])).exitCode).toBe(1);
    handler.respond = () => ({ exitCode: -1 });
    expect((await sh(["-c", "true"])).exitCode).toBe(1);
  });

  it("runs the line in /bin/sh on FALLBACK, and when the handler fails", async () => {
    const r = await sh(["-c", "echo hi; exit 4"]);
    expect([r.stdout, r.exitCode]).toEqual(["hi\n", 4]);
    handler.respond = () => {
      throw new Error("handler bug");
    };
    const failed = await sh(["-c", "echo still; exit 5"]);
    expect([failed.stdout, failed.exitCode]).toEqual(["still\n", 5]);
    expect(handler.calls).toHaveLength(2);
  });

  it("runs the rewritten line on REWRITE, after the reply's stderr, keeping $0 and the positional arguments", async () => {
    handler.respond = () => ({ rewrite: 'echo rewritten "$0:$1"', stderr: Buffer.from("note\n") });
    const r = await sh(["-c", "echo original", "name", "arg"]);
    expect([r.stdout, r.stderr, r.exitCode]).toEqual(["rewritten name:arg\n", "note\n", 0]);
    expect(handler.calls[0]!.argv).toEqual(["orion-sh", "-c", "echo original", "name", "arg"]);
  });

  it("hands sh's flags to the handler and keeps them on exec: a rewritten `false; echo no` under -ec stops at false", async () => {
    handler.respond = () => ({ rewrite: "false; echo no" });
    for (const flags of [["-ec"], ["-e", "-c"], ["-c", "-e"]]) {
      const r = await sh([...flags, "echo original"]);
      expect([r.stdout, r.exitCode], flags.join(" ")).toEqual(["", 1]);
    }
    expect(handler.calls.map((c) => c.argv)).toEqual([
      ["orion-sh", "-ec", "echo original"],
      ["orion-sh", "-e", "-c", "echo original"],
      ["orion-sh", "-c", "-e", "echo original"],
    ]);
  });

  it("runs $ORION_REAL_SHELL instead of /bin/sh, `-o NAME` taking its word (bash's -o pipefail -c)", async () => {
    handler.respond = () => ({ rewrite: 'echo "bash=${BASH_VERSION:+yes}"; false | true' });
    const r = await sh(["-o", "pipefail", "-c", "echo original"], { ORION_REAL_SHELL: "/bin/bash" });
    expect([r.stdout, r.exitCode]).toEqual(["bash=yes\n", 1]);
    expect(handler.calls[0]!.argv).toEqual(["orion-sh", "-o", "pipefail", "-c", "echo original"]);
    handler.respond = () => ({ runInClient: true });
    const fallback = await sh(["-c", 'echo "${BASH_VERSION:+bash}"'], { ORION_REAL_SHELL: "/bin/bash" });
    expect(fallback.stdout).toBe("bash\n");
  });

  it("sends the caller's cwd and environment", async () => {
    const dir = scratch.dir("cwd");
    handler.respond = (call) => ({ stdout: Buffer.from(`${call.cwd} ${call.env.ORION_SH_TEST_VAR}\n`) });
    const r = await sh(["-c", "true"], { ORION_SH_TEST_VAR: "a b=c" }, { cwd: dir });
    expect(r.stdout).toBe(`${realpathSync(dir)} a b=c\n`);
  });

  it("dies of a SIGINT while it waits for the build, and never runs the line", async () => {
    const marker = join(scratch.dir("sigint"), "ran");
    let release!: () => void;
    handler.respond = () => new Promise((r) => (release = () => r({ runInClient: true })));
    const child = sh(["-c", `touch ${marker}`]);
    while (handler.calls.length === 0) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGINT");
    const r = await child;
    release();
    expect(r.signal).toBe("SIGINT");
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker)).toBe(false);
  });
});

describe("orion-sh without the build", () => {
  it("runs a script (no -c) with the real shell without asking the build", async () => {
    const dir = scratch.dir("script");
    writeFileSync(join(dir, "script.sh"), 'echo "script $1"\nexit 6\n');
    for (const args of [["script.sh", "arg"], ["-e", "script.sh", "arg"], ["-o", "errexit", "script.sh", "arg"]]) {
      const r = await sh(args, {}, { cwd: dir });
      expect([r.stdout, r.exitCode], args.join(" ")).toEqual(["script arg\n", 6]);
    }
    expect(handler.calls).toEqual([]);
  });

  it("runs plain sh when ORION_AGENT_SOCKET is unset or empty", async () => {
    for (const value of [undefined, ""]) {
      const r = await sh(["-c", "echo plain; exit 5"], { ORION_AGENT_SOCKET: value });
      expect([r.stdout, r.exitCode]).toEqual(["plain\n", 5]);
    }
    expect(handler.calls).toEqual([]);
  });

  it("runs plain sh, without hanging, when nobody listens on the socket path", async () => {
    const dir = scratch.dir("dead");
    const notASocket = join(dir, "file.sock");
    writeFileSync(notASocket, "");
    for (const path of [join(dir, "missing.sock"), notASocket]) {
      const r = await sh(["-c", "echo plain; exit 5"], { ORION_AGENT_SOCKET: path }, { timeout: 5_000 });
      expect([r.stdout, r.exitCode, r.timedOut]).toEqual(["plain\n", 5, false]);
    }
  });
});

describe("make with SHELL=orion-sh", () => {
  it("sends every recipe line, a sub-make's too (the command-line SHELL beats its SHELL :=), and runs the rewrites", async () => {
    const dir = scratch.dir("make");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "Makefile"), "all: sub\n\t@echo top-line\nsub:\n\t@$(MAKE) -s -C sub\n.PHONY: all sub\n");
    writeFileSync(join(dir, "sub", "Makefile"), "SHELL := /bin/sh\n.SHELLFLAGS := -ec\nall:\n\t@echo sub-line\n");
    handler.respond = (call) => {
      const line = call.argv.at(-1)!;
      if (line === "echo top-line") return { rewrite: "echo top-rewritten" };
      if (line === "echo sub-line") return { rewrite: "echo sub-rewritten" };
      return { runInClient: true };
    };
    const r = await execa("make", ["-s", "-j2", `SHELL=${SH}`], { cwd: dir, env: cleanEnv({ ORION_AGENT_SOCKET: socket }), extendEnv: false, reject: false });
    expect([r.stdout, r.exitCode], r.stderr).toEqual(["sub-rewritten\ntop-rewritten", 0]);
    const seen = handler.calls.map((c) => ({ argv: c.argv, cwd: c.cwd }));
    expect(seen).toContainEqual({ argv: ["orion-sh", "-c", "echo top-line"], cwd: realpathSync(dir) });
    expect(seen).toContainEqual({ argv: ["orion-sh", "-ec", "echo sub-line"], cwd: realpathSync(join(dir, "sub")) });
    expect(seen.some((c) => c.argv.at(-1)!.includes("-C sub"))).toBe(true);
  });
});
