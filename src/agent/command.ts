// `orion agent`: wires the agent server to its handler, its socket and its log — or, without --foreground, starts it detached.
import { makeDirSync, writeFileAtomic } from "../core/fs.js";
import { spawn } from "node:child_process";
import { openSync, closeSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { homedir } from "node:os";
import { dirname } from "node:path";
import type { Socket } from "node:net";
import type { CallHandler, CompilerCall } from "../cc/types.js";
import type { Logger } from "../core/logger.js";
import { PassThroughHandler } from "./passthrough.js";
import { AgentAlreadyRunning, socketAnswers, startAgent } from "./server.js";
import { agentSideFiles, agentSocketPath } from "./socket-path.js";

/** sccache's server waits 10 minutes; a build's compiles come far closer together than that. */
const DEFAULT_IDLE_MS = 600_000;
const START_TIMEOUT_MS = 5_000;

export interface AgentCommandOptions {
  socket?: string;
  idleMs?: number;
  foreground?: boolean;
  cacheDir: string;
  logLevel: string;
  logFile?: string;
  env: Record<string, string | undefined>;
  /** The orion script to re-run detached when not in the foreground. */
  script: string;
  /** A process (the build that started this agent) whose end the warm-up waits for, so the two do not share the cores. */
  warmAfter?: number;
  /** The warm build server (src/cli/build-server.ts) this agent also runs, unless ORION_BUILD_SERVER=0. */
  buildServer?: (logger: Logger) => Promise<{ serve(call: CompilerCall, conn: Socket): Promise<void>; warmUp?(): Promise<void>; close(): void }>;
}

export async function runAgentCommand(o: AgentCommandOptions): Promise<number> {
  const socketPath = o.socket ?? agentSocketPath({ env: o.env, uid: process.getuid?.() ?? 0, home: homedir() });
  const fromEnv = Number(o.env.ORION_AGENT_IDLE_MS);
  const idleMs = o.idleMs ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_IDLE_MS);
  if (!o.foreground) return startDetached(o.script, socketPath, idleMs);

  const { createRootLogger } = await import("../core/logger.js");
  const logger = createRootLogger({ level: o.logLevel, file: o.logFile });
  const handler = await loadHandler(o.env.ORION_AGENT_HANDLER, o.cacheDir, logger);
  // `orion build` from the native client is served here too (ORION_BUILD_SERVER=0 in the agent's environment: not).
  const builds = o.env.ORION_BUILD_SERVER === "0" ? undefined : await o.buildServer?.(logger);
  let agent;
  try {
    agent = await startAgent({ socketPath, handler, idleMs, logger, isStale: codeChangedCheck(), builds: builds && ((call, conn) => builds.serve(call, conn)) });
  } catch (err) {
    // Two agents started by hand (the native client's lock prevents it otherwise): the first one serves.
    if (err instanceof AgentAlreadyRunning) return 0;
    throw err;
  }
  // Listening first (a build waiting for this agent is served at once), then the modules a build needs — once the build
  // that started this agent is over: on a sub-second build the two would share the cores (~0.15 s of its 0.7 s here).
  if (builds?.warmUp) void processGone(o.warmAfter).then(() => builds.warmUp?.());
  const stop = () => void agent.close();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await agent.closed;
  builds?.close();
  return 0;
}

/**
 * Node flags of the agent process. V8's memory reducer shrinks an idle heap; here an agent that waited ~90 s for its
 * first build (started with a long cold one) then served every build ~60 % slower than a fresh one (more GC, slower
 * file reads: its memory handed back and faulted in again), and --no-memory-reducer made the two even. The agent
 * exits after its idle time anyway, so it keeps its heap until then. native/cc/orion-cc.c starts it with the same flag.
 */
const AGENT_NODE_FLAGS = ["--no-memory-reducer"];

/**
 * Starts the agent for `env` detached, without waiting, unless one answers already: a build run in its own process
 * leaves it behind so that the next one is served warm. Errors are ignored: the next build simply runs on its own.
 */
export async function startAgentInBackground(script: string, env: NodeJS.ProcessEnv, warmAfter?: number): Promise<void> {
  try {
    const socketPath = agentSocketPath({ env, uid: process.getuid?.() ?? 0, home: homedir() });
    if (await socketAnswers(socketPath)) return;
    makeDirSync(dirname(socketPath), 0o700);
    const log = openSync(agentSideFiles(socketPath).log, "a", 0o600);
    const args = [...AGENT_NODE_FLAGS, script, "agent", "--foreground", "--socket", socketPath, ...(warmAfter ? ["--warm-after", String(warmAfter)] : [])];
    const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", log, log], env, cwd: "/" });
    closeSync(log);
    child.unref();
    // The next `orion build` may come before it listens (a short build just after this one): it waits for this pid.
    if (child.pid) {
      writeFileAtomic(agentSideFiles(socketPath).starting, `${child.pid}\n`);
    }
  } catch {
    /* no agent: nothing lost */
  }
}

/** Resolves once process `pid` no longer exists (at once without one), checked every 50 ms. */
export function processGone(pid: number | undefined): Promise<void> {
  const alive = () => {
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  };
  return new Promise((resolve) => {
    const check = () => (alive() ? setTimeout(check, 50).unref() : resolve());
    check();
  });
}

/**
 * A cheap check (one stat, at most every 2 s) of whether the built code this agent runs from was replaced since it
 * started: an agent left running across a rebuild or an upgrade must not keep answering with the old rules.
 */
function codeChangedCheck(): () => boolean {
  const self = fileURLToPath(import.meta.url);
  const stamp = (): number => {
    try {
      return statSync(self).mtimeMs;
    } catch {
      return -1; // removed: changed
    }
  };
  const started = stamp();
  let checkedAt = 0;
  let stale = false;
  return () => {
    const now = Date.now();
    if (!stale && now - checkedAt >= 2000) {
      checkedAt = now;
      stale = stamp() !== started;
    }
    return stale;
  };
}

/** The caching CcService when it is built, else the pass-through handler (or when ORION_AGENT_HANDLER=passthrough). */
async function loadHandler(choice: string | undefined, cacheDir: string, logger: Logger): Promise<CallHandler> {
  if (choice === "passthrough") return new PassThroughHandler();
  try {
    const mod = await import("../cc/service.js");
    // The native client runs uncached calls itself (an exec, no fork here, its own stdin and terminal).
    return new mod.CcService({ cacheDir, logger, uncachedRunInClient: true });
  } catch (err) {
    logger.warn({ err }, "the cc service is unavailable; the agent passes calls through to the compiler");
    return new PassThroughHandler();
  }
}

/** Runs `orion agent --foreground` in its own session, waits until it accepts, prints the socket path. */
async function startDetached(script: string, socketPath: string, idleMs: number): Promise<number> {
  if (await socketAnswers(socketPath)) {
    process.stdout.write(`${socketPath}\n`);
    return 0;
  }
  makeDirSync(dirname(socketPath), 0o700);
  const log = openSync(agentSideFiles(socketPath).log, "a", 0o600);
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, script, "agent", "--foreground", "--socket", socketPath, "--idle-ms", String(idleMs)], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await socketAnswers(socketPath)) {
      process.stdout.write(`${socketPath}\n`);
      return 0;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stderr.write(`orion: the agent did not start; see ${agentSideFiles(socketPath).log}\n`);
  return 3;
}
