// runInProcessGroup through the spawn server and through execa: the same behaviour either way.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isInfrastructureError, Status } from "../core/index.js";
import { runInProcessGroup, type RunOptions } from "./run-process.js";
import { defaultSpawnServerBinary, SpawnServer } from "./spawn-server.js";
import { GRANDCHILD_SCRIPT, expectGroupTimedOut, gone } from "./test-helpers.js";

const repo = join(import.meta.dirname, "..", "..");
const binary = defaultSpawnServerBinary()!;
let tmp: string;
let server: SpawnServer;

beforeAll(async () => {
  execFileSync("make", ["--no-print-directory", "-s", "native/build/orion-spawn"], { cwd: repo, stdio: "inherit" });
  tmp = await fsp.mkdtemp(join(tmpdir(), "orion-run-process-"));
  server = new SpawnServer({ binary });
});

afterAll(async () => {
  server.close();
  await fsp.rm(tmp, { recursive: true, force: true });
});

const PATH = "/usr/local/bin:/usr/bin:/bin";

describe.each([
  ["the spawn server", () => server],
  ["execa", () => null],
])("runInProcessGroup through %s", (_name, spawner) => {
  const run = (argv: string[], extra: Partial<RunOptions> = {}) =>
    runInProcessGroup("test", { argv, cwd: tmp, env: { PATH }, timeoutMs: 30_000, maxBuffer: 1 << 20, spawnServer: spawner(), ...extra });

  it("uses the spawn server when asked", async () => {
    const r = await run(["sh", "-c", "echo $PPID"]);
    const ppid = Number(r.stdout.toString());
    if (spawner()) expect(ppid).toBe(server.serverPid);
    else expect(ppid).toBe(process.pid);
  });

  it("returns exit codes and captures stdout and stderr as bytes", async () => {
    const r = await run(["sh", "-c", "printf 'a\\000\\377'; printf 'oops\\n' >&2; exit 3"]);
    expect(r.exitCode).toBe(3);
    expect([...r.stdout]).toEqual([0x61, 0, 0xff]);
    expect(r.stderr.toString()).toBe("oops\n");
    expect((await run(["true"])).exitCode).toBe(0);
  });

  it("passes the environment exactly and looks the program up on its PATH", async () => {
    const bin = join(tmp, "bin");
    await fsp.mkdir(bin, { recursive: true });
    await fsp.writeFile(join(bin, "orion-test-tool"), "#!/bin/sh\necho tool \"$@\"\n", { mode: 0o755 });
    // A non-executable file of that name earlier on PATH is skipped, as execvp does.
    const shadow = join(tmp, "shadow");
    await fsp.mkdir(shadow, { recursive: true });
    await fsp.writeFile(join(shadow, "orion-test-tool"), "not a program", { mode: 0o644 });
    const env = { PATH: `${shadow}:${bin}:${PATH}`, FOO: "b a r", EMPTY: "" };
    const r = await run(["orion-test-tool", "x", ""], { env });
    expect(r.stdout.toString()).toBe("tool x \n");
    const printed = (await run(["env"], { env })).stdout.toString().split("\n").filter(Boolean).sort();
    expect(printed).toEqual(["EMPTY=", "FOO=b a r", `PATH=${env.PATH}`]);
  });

  it("passes long command lines and long output intact, several at once", async () => {
    const lines = Array.from({ length: 8 }, (_, i) => [`${i}`, ...["a", "b", "c"].map((c) => c.repeat(50_000 + 7919 * i))]);
    const results = await Promise.all(lines.map((args) => run(["sh", "-c", 'printf "%s" "$@"; printf "%s" "$2" >&2', "sh", ...args])));
    results.forEach((r, i) => {
      expect(r.stdout.toString()).toBe(lines[i]!.join(""));
      expect(r.stderr.toString()).toBe(lines[i]![1]);
    });
  });

  it("runs in the given directory with stdin empty", async () => {
    const dir = await fsp.realpath(await fsp.mkdtemp(join(tmp, "cwd-")));
    expect((await run(["pwd"], { cwd: dir })).stdout.toString()).toBe(`${dir}\n`);
    expect((await run(["./script.sh"], { cwd: dir }).catch((e: unknown) => e)) as Error).toMatchObject({ message: expect.stringContaining("./script.sh") });
    await fsp.writeFile(join(dir, "script.sh"), "#!/bin/sh\necho here\n", { mode: 0o755 });
    expect((await run(["./script.sh"], { cwd: dir })).stdout.toString()).toBe("here\n");
    await fsp.writeFile(join(dir, "plain.sh"), "echo plain \"$@\"\n", { mode: 0o755 }); // no "#!": the shell runs it
    expect((await run(["./plain.sh", "x"], { cwd: dir })).stdout.toString()).toBe("plain x\n");
    expect((await run(["cat"])).stdout.length).toBe(0);
  });

  it("reports a missing program as an infrastructure error naming it", async () => {
    for (const prog of ["/no/such/cc", "orion-no-such-program"]) {
      const err = await run([prog, "-c"]).catch((e: unknown) => e);
      expect(err).toMatchObject({ message: expect.stringContaining(`cannot run ${prog}: no such program`), code: Status.FAILED_PRECONDITION });
      expect(isInfrastructureError(err)).toBe(true);
    }
  });

  it("kills the whole process group on timeout and reports an infrastructure error", async () => {
    const pidFile = join(tmp, `grandchild-${spawner() ? "server" : "execa"}.pid`);
    const started = Date.now();
    const err = await run(GRANDCHILD_SCRIPT, { env: { PATH, PID_FILE: pidFile }, timeoutMs: 300 }).catch((e: unknown) => e);
    await expectGroupTimedOut(err, started, pidFile);
  });

  it("kills the whole process group on cancellation", async () => {
    const pidFile = join(tmp, `cancelled-${spawner() ? "server" : "execa"}.pid`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await run(["sh", "-c", 'sleep 30 & echo $! > "$PID_FILE"; sleep 30'], { env: { PATH, PID_FILE: pidFile }, signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: Status.CANCELLED });
    expect(isInfrastructureError(err)).toBe(false);
    await expect.poll(() => gone(Number(readFileSync(pidFile, "utf8"))), { timeout: 5000 }).toBe(true);
  });

  it("kills what the tool left running once it exits", async () => {
    const pidFile = join(tmp, `left-${spawner() ? "server" : "execa"}.pid`);
    const started = Date.now();
    const r = await run(["sh", "-c", 'sleep 30 & echo $! > "$PID_FILE"; echo done'], { env: { PATH, PID_FILE: pidFile } });
    expect(r.stdout.toString()).toBe("done\n");
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect.poll(() => gone(Number(readFileSync(pidFile, "utf8"))), { timeout: 5000 }).toBe(true);
  });

  it("reports a tool killed by a signal, and enforces the output cap", async () => {
    const killed = await run(["sh", "-c", "kill -9 $$"]).catch((e: unknown) => e);
    expect(killed).toMatchObject({ message: expect.stringContaining("killed by SIGKILL"), code: Status.ABORTED });
    const big = await run(["head", "-c", "1000000", "/dev/zero"], { maxBuffer: 1000 }).catch((e: unknown) => e);
    expect(big).toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
    // Up to the cap is fine.
    expect((await run(["head", "-c", "300000", "/dev/zero"], { maxBuffer: 300000 })).stdout.length).toBe(300000);
  });

  it("runs 50 at once, each with its own output", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => run(["sh", "-c", 'echo "out $0"; echo "err $0" >&2; exit $(($0 % 7))', String(i)])),
    );
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(i % 7);
      expect(r.stdout.toString()).toBe(`out ${i}\n`);
      expect(r.stderr.toString()).toBe(`err ${i}\n`);
    });
  });
});

describe("the fallback", () => {
  const opts = (spawnServer: SpawnServer): RunOptions => ({ argv: ["sh", "-c", "echo $PPID"], cwd: tmp, env: { PATH }, timeoutMs: 30_000, maxBuffer: 1 << 20, spawnServer });

  it("runs tools from Node when the binary does not exist", async () => {
    const missing = new SpawnServer({ binary: join(tmp, "no-such-orion-spawn") });
    expect(await missing.run(["true"], { cwd: tmp, env: { PATH }, timeoutMs: 1000 })).toBeUndefined();
    const r = await runInProcessGroup("test", opts(missing));
    expect(Number(r.stdout.toString())).toBe(process.pid);
    missing.close();
  });

  it("runs tools from Node when the binary does not speak the protocol", async () => {
    const wrong = new SpawnServer({ binary: "/bin/true" });
    const r = await runInProcessGroup("test", opts(wrong));
    expect(Number(r.stdout.toString())).toBe(process.pid);
    wrong.close();
  });

  it("fails the runs of a server that dies, killing their groups, and falls back after", async () => {
    const s = new SpawnServer({ binary });
    expect((await s.run(["true"], { cwd: tmp, env: { PATH }, timeoutMs: 1000 }))?.exitCode).toBe(0);
    const pidFile = join(tmp, "orphan.pid");
    const running = runInProcessGroup("test", { ...opts(s), argv: ["sh", "-c", 'echo $$ > "$PID_FILE"; sleep 30'], env: { PATH, PID_FILE: pidFile } });
    await expect.poll(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n")).toBe(true);
    process.kill(s.serverPid!, "SIGKILL");
    const err = await running.catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringContaining("spawn server died") });
    expect(isInfrastructureError(err)).toBe(true);
    await expect.poll(() => gone(Number(readFileSync(pidFile, "utf8"))), { timeout: 5000 }).toBe(true);
    expect(Number((await runInProcessGroup("test", opts(s))).stdout.toString())).toBe(process.pid);
    s.close();
  });
});
