// Helpers for end-to-end tests that start `orion cc` agents: find them by their socket, and stop them by pid — only an agent of that socket, never a recycled pid.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The pids of agents serving this socket: processes whose command line names it (the path is unique to one test). */
export function agentPids(socket: string): number[] {
  try {
    return execFileSync("pgrep", ["-f", "--", `agent --foreground --socket ${socket}`], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

export function pidFile(socket: string): number | undefined {
  try {
    return Number(readFileSync(`${socket}.pid`, "utf8").trim());
  } catch {
    return undefined;
  }
}

/** True when pid is alive and is the agent of this socket: a stale pid file may name a recycled pid, which must never be killed. */
export function isAgentOf(pid: number, socket: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").includes(`agent --foreground --socket ${socket}`);
  } catch {
    return false;
  }
}

/** SIGKILLs the agent of this socket named by its pid file, if that pid still is it; true when one was killed. */
export function killAgent(socket: string): boolean {
  const pid = pidFile(socket);
  if (pid === undefined || !isAgentOf(pid, socket)) return false;
  try {
    process.kill(pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

export async function stopAgents(socket: string): Promise<void> {
  killAgent(socket);
  for (const pid of agentPids(socket)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}
