// Runs the build's make in its own process group: its output passed on as it comes, stopped whole on an interrupt.
import type { ResultPromise } from "execa";
import { killGroup } from "../steps/host-step.js";

export interface MakeRun {
  make: string;
  dir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  output(chunk: Uint8Array): void;
  signal?: AbortSignal;
  /** Called once make's process has been started. */
  started?(): void;
  /** SIGTERM first; SIGKILL to the group after this long. */
  graceMs?: number;
}

export async function runMake(o: MakeRun): Promise<{ exitCode?: number; interrupted: boolean }> {
  const { execa } = await import("execa");
  const child: ResultPromise = execa(o.make, o.args, {
    cwd: o.dir,
    env: o.env,
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    // Its own group: an interrupt stops make, the shims and everything they started, and nothing else.
    detached: true,
    buffer: false,
    stripFinalNewline: false,
  });
  o.started?.();
  child.stdout?.on("data", (b: Buffer) => o.output(b));
  child.stderr?.on("data", (b: Buffer) => o.output(b));
  let interrupted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    interrupted = true;
    killGroup(child.pid, "SIGTERM");
    killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), o.graceMs ?? 3000);
    killTimer.unref();
  };
  if (o.signal?.aborted) stop();
  o.signal?.addEventListener("abort", stop, { once: true });
  // Orion exiting under make (a second Ctrl-C) takes the whole group with it.
  const onExit = () => killGroup(child.pid, "SIGKILL");
  process.once("exit", onExit);
  try {
    const r = await child;
    return { exitCode: r.exitCode, interrupted };
  } finally {
    clearTimeout(killTimer);
    o.signal?.removeEventListener("abort", stop);
    process.off("exit", onExit);
  }
}
