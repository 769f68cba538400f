// The spawn server's own API: results, signals, keeping Node alive only while a run is pending.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultSpawnServerBinary, SpawnError, SpawnServer } from "./spawn-server.js";

const repo = join(import.meta.dirname, "..", "..");
const env = { PATH: "/usr/bin:/bin" };
let server: SpawnServer;

beforeAll(() => {
  execFileSync("make", ["--no-print-directory", "-s", "native/build/orion-spawn"], { cwd: repo, stdio: "inherit" });
  server = new SpawnServer();
});

afterAll(() => server.close());

/** Handles that keep the event loop alive, by type. */
function liveHandles(): { ProcessWrap: number; PipeWrap: number } {
  const counts: Record<string, number> = {};
  for (const t of process.getActiveResourcesInfo()) counts[t] = (counts[t] ?? 0) + 1;
  return { ProcessWrap: counts.ProcessWrap ?? 0, PipeWrap: counts.PipeWrap ?? 0 };
}

describe("SpawnServer", () => {
  it("finds the binary from this module's directory", () => {
    expect(defaultSpawnServerBinary()).toBe(join(repo, "native", "build", "orion-spawn"));
  });

  it("reports exit codes, signals and pids", async () => {
    const ok = await server.run(["sh", "-c", "echo $$; exit 4"], { cwd: "/", env, timeoutMs: 10_000 });
    expect(ok).toMatchObject({ exitCode: 4, signal: null, maxBufferExceeded: false });
    expect(ok!.stdout.toString()).toBe(`${ok!.pid}\n`);
    const term = await server.run(["sh", "-c", "kill -TERM $$"], { cwd: "/", env, timeoutMs: 10_000 });
    expect(term).toMatchObject({ exitCode: null, signal: "SIGTERM" });
    const abrt = await server.run(["sh", "-c", "kill -ABRT $$"], { cwd: "/", env, timeoutMs: 10_000 });
    expect(abrt).toMatchObject({ exitCode: null, signal: "SIGABRT" });
  });

  it("makes each child the leader of its own process group", async () => {
    const r = await server.run(["sh", "-c", "ps -o pgid= -p $$"], { cwd: "/", env, timeoutMs: 10_000 });
    expect(Number(r!.stdout.toString())).toBe(r!.pid);
  });

  it("rejects with the errno of a program that cannot start", async () => {
    const err = await server.run(["/etc/passwd"], { cwd: "/", env, timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect(err).toMatchObject({ code: "EACCES" });
  });

  it("keeps Node alive only while a run is pending", async () => {
    await server.run(["true"], { cwd: "/", env, timeoutMs: 10_000 });
    const idle = liveHandles();
    const running = server.run(["sleep", "0.3"], { cwd: "/", env, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect(liveHandles().PipeWrap).toBeGreaterThan(idle.PipeWrap);
    await running;
    expect(liveHandles()).toEqual(idle);
    const fresh = new SpawnServer();
    const before = liveHandles();
    const first = fresh.run(["true"], { cwd: "/", env, timeoutMs: 10_000 });
    // Waiting for the server's hello keeps Node alive too (nothing else may).
    expect(liveHandles().PipeWrap).toBeGreaterThan(before.PipeWrap);
    await first;
    expect(liveHandles()).toEqual(before);
    fresh.close();
  });
});
