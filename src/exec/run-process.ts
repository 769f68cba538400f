// Runs one tool as the leader of its own process group, so a timeout or a cancellation kills everything it started.
import { ExitCode, OrionError, Status } from "../core/index.js";
import { SpawnError, SpawnServer, type SpawnServerResult } from "./spawn-server.js";

export interface RunOptions {
  argv: readonly string[];
  cwd: string;
  /** The child's whole environment: nothing is inherited. */
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Cap on captured stdout and stderr, each. */
  maxBuffer: number;
  /**
   * Who starts the tool: by default the process-wide spawn server (native/build/orion-spawn, so
   * Node never fork()s itself), or Node itself when that is unavailable; null: always Node.
   */
  spawnServer?: SpawnServer | null;
}

export interface RunResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export function cancelledError(what: string): OrionError {
  // Whoever cancelled (a speculative clone's loser, a user's ^C) does not want a retry.
  return new OrionError(`${what} was cancelled`, { exitCode: ExitCode.INTERRUPTED, code: Status.CANCELLED });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone.
  }
}

function toBuffer(data: unknown): Buffer {
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.alloc(0);
}

let shared: SpawnServer | null | undefined;

/** The spawn server every run shares, started on first use; null when ORION_SPAWN_SERVER=0. */
export function defaultSpawnServer(): SpawnServer | null {
  shared ??= process.env.ORION_SPAWN_SERVER === "0" ? null : new SpawnServer();
  return shared;
}

export async function runInProcessGroup(what: string, options: RunOptions): Promise<RunResult> {
  if (options.signal?.aborted) throw cancelledError(what);
  const [file, ...args] = options.argv;
  if (!file) throw new OrionError(`${what} has an empty command line`, { exitCode: ExitCode.BUILD_FAILED, code: Status.INVALID_ARGUMENT });

  const server = options.spawnServer === undefined ? defaultSpawnServer() : options.spawnServer;
  if (server) {
    let result: SpawnServerResult | undefined;
    try {
      result = await server.run(options.argv, {
        cwd: options.cwd,
        env: options.env,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        maxBuffer: options.maxBuffer,
      });
    } catch (err) {
      if (err instanceof SpawnError && err.code === "ENOENT") {
        throw new OrionError(`${what}: cannot run ${file}: no such program`, { code: Status.FAILED_PRECONDITION, cause: err });
      }
      throw new OrionError(`${what}: cannot run ${file}: ${(err as Error).message}`, { cause: err });
    }
    // undefined: the server is unavailable and started nothing, so Node runs the tool.
    if (result) return serverResult(what, file, options, result);
  }
  return runWithExeca(what, file, args, options);
}

/** Maps a spawn server's result exactly as runWithExeca maps execa's (the server killed the rest of the group at exit). */
function serverResult(what: string, file: string, options: RunOptions, result: SpawnServerResult): RunResult {
  if (result.stoppedBy === "timeout") {
    throw new OrionError(`${what} timed out after ${options.timeoutMs} ms`, { code: Status.DEADLINE_EXCEEDED });
  }
  if (result.stoppedBy === "cancel") throw cancelledError(what);
  if (result.maxBufferExceeded) {
    throw new OrionError(`${what} wrote more than ${options.maxBuffer} bytes to stdout or stderr`, {
      exitCode: ExitCode.BUILD_FAILED,
      code: Status.RESOURCE_EXHAUSTED,
    });
  }
  if (result.exitCode === null) {
    // Most often the kernel's OOM killer: another node may have the memory.
    throw new OrionError(`${what}: ${file} was killed by ${result.signal}`, { code: Status.ABORTED });
  }
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

/** The fallback: Node fork()s itself for the tool (costly for a large heap: the spawn server avoids it). */
async function runWithExeca(what: string, file: string, args: string[], options: RunOptions): Promise<RunResult> {
  // Loaded on first use: a build served from the cache runs no tool and should not pay ~190 ms for it.
  const { execa } = await import("execa");
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    shell: false,
    reject: false,
    detached: true,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    encoding: "buffer",
    stripFinalNewline: false,
    maxBuffer: options.maxBuffer,
  });
  const pid = child.pid;
  let stoppedBy: "timeout" | "cancel" | undefined;
  const timer = setTimeout(() => {
    stoppedBy ??= "timeout";
    killGroup(pid);
  }, options.timeoutMs);
  const onAbort = () => {
    stoppedBy ??= "cancel";
    killGroup(pid);
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  // A background process left behind by the tool would hold the output pipes open (and outlive the sandbox).
  child.once("exit", () => killGroup(pid));

  let result;
  try {
    result = await child;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }

  if (stoppedBy === "timeout") {
    throw new OrionError(`${what} timed out after ${options.timeoutMs} ms`, { code: Status.DEADLINE_EXCEEDED });
  }
  if (stoppedBy === "cancel") throw cancelledError(what);
  if (result.isMaxBuffer) {
    killGroup(pid);
    throw new OrionError(`${what} wrote more than ${options.maxBuffer} bytes to stdout or stderr`, {
      exitCode: ExitCode.BUILD_FAILED,
      code: Status.RESOURCE_EXHAUSTED,
    });
  }
  if (result.exitCode === undefined) {
    const code = result.code ?? (result.cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === "ENOENT") {
      throw new OrionError(`${what}: cannot run ${file}: no such program`, { code: Status.FAILED_PRECONDITION, cause: result.cause });
    }
    if (result.signal) {
      // Most often the kernel's OOM killer: another node may have the memory.
      throw new OrionError(`${what}: ${file} was killed by ${result.signal}`, { code: Status.ABORTED });
    }
    throw new OrionError(`${what}: cannot run ${file}: ${result.shortMessage}`, { cause: result.cause });
  }
  return { exitCode: result.exitCode, stdout: toBuffer(result.stdout), stderr: toBuffer(result.stderr) };
}
