// Shared by the exec unit tests: whether a process the test started (or had started) is still alive, what a timed-out
// process group must look like, and a materialized tree as a comparable listing.
import { readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join, relative } from "node:path";
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

/** Every entry under `dir`: files by content and mode ("text (444)"), symlinks by target ("-> t"), folders by mode ("d/"). */
export async function treeListing(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      const rel = relative(dir, full);
      const mode = async () => ((await fsp.stat(full)).mode & 0o777).toString(8);
      if (e.isDirectory()) {
        out[`${rel}/`] = await mode();
        await walk(full);
      } else if (e.isSymbolicLink()) out[rel] = `-> ${await fsp.readlink(full)}`;
      else out[rel] = `${await fsp.readFile(full, "utf8")} (${await mode()})`;
    }
  };
  await walk(dir);
  return out;
}
