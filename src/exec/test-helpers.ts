// Shared by the exec unit tests: whether a process the test started (or had started) is still alive, and what a timed-out process group must look like.
import { readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { expect } from "vitest";
import { Status, isInfrastructureError } from "../core/index.js";

/** A shell that leaves a grandchild `sleep 30` (its pid written to $PID_FILE) and sleeps itself: what a timeout must kill whole. */
export const GRANDCHILD_SCRIPT = ["sh", "-c", 'sleep 30 & echo $! > "$PID_FILE"; sleep 30'];

/**
 * Checks a run of GRANDCHILD_SCRIPT given 300 ms: it ended soon after `started` as an infrastructure DEADLINE_EXCEEDED,
 * and the grandchild whose pid is in `pidFile` is gone too.
 */
export async function expectGroupTimedOut(err: unknown, started: number, pidFile: string): Promise<void> {
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(err).toMatchObject({ message: expect.stringMatching(/timed out after 300 ms/), code: Status.DEADLINE_EXCEEDED });
  expect(isInfrastructureError(err)).toBe(true);
  const pid = Number(await fsp.readFile(pidFile, "utf8"));
  expect(pid).toBeGreaterThan(0);
  await expect.poll(() => gone(pid), { timeout: 5000 }).toBe(true);
}

/** True when `pid` no longer runs: gone, or a zombie waiting for a parent (in containers PID 1 may not reap). */
export function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}
