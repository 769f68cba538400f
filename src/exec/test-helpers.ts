// Shared by the exec unit tests: whether a process the test started (or had started) is still alive.
import { readFileSync } from "node:fs";

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
