// The agent's unix-socket server: reads one call per connection, hands it to a CallHandler, replies, and exits when idle.
import { makeDirSync } from "../core/fs.js";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { CallHandler, CompilerCall } from "../cc/types.js";
import type { Logger } from "../core/logger.js";
import { BUILD_CALL, BuildFrame, decodeRequest, encodeBuildFrame, encodeReply, FrameReader, ReplyStatus } from "./protocol.js";
import { agentSideFiles } from "./socket-path.js";

export interface AgentOptions {
  socketPath: string;
  handler: CallHandler;
  /** The agent closes after this long with no call in flight and none received. */
  idleMs: number;
  logger: Logger;
  /** Called once when the agent closes because it was idle (before `closed` resolves). */
  onIdle?: () => void;
  /**
   * Asked after each reply: true when this agent's code has been replaced on disk (Orion was rebuilt or upgraded),
   * so it stops taking calls and the next client starts an agent running the new code.
   */
  isStale?: () => boolean;
  /** Written to the pid file; the process's own pid unless a test says otherwise. */
  pid?: number;
  /**
   * Serves a build (a BUILD_CALL request): writes its build frames to the connection and resolves when the last is
   * written. Absent: such a request is answered NOT_SERVED, and the client builds in its own process.
   */
  builds?: (call: CompilerCall, conn: Socket) => Promise<void>;
}

export interface Agent {
  socketPath: string;
  /** Resolves once the agent has stopped listening and removed its socket and pid files. */
  closed: Promise<void>;
  /** Stops accepting calls; calls in flight still get their replies. */
  close(): Promise<void>;
}

/** Thrown by startAgent when a live agent already answers on the socket: the caller should just exit. */
export class AgentAlreadyRunning extends Error {
  constructor(readonly socketPath: string) {
    super(`an agent already listens on ${socketPath}`);
    this.name = "AgentAlreadyRunning";
  }
}

/** True when something accepts connections on the socket path. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { socketPath, handler, idleMs, logger } = options;
  const log = logger.child({ module: "agent" });
  const files = agentSideFiles(socketPath);
  makeDirSync(dirname(socketPath), 0o700);
  if (await socketAnswers(socketPath)) throw new AgentAlreadyRunning(socketPath);
  // A socket file nobody answers on is left by an agent that was killed: replace it.
  rmSync(socketPath, { force: true });

  const server: Server = createServer({ allowHalfOpen: true });
  /** Connections whose reply has not been fully written yet; the idle timer runs only while this is 0. */
  let inFlight = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const armIdle = () => {
    clearTimeout(idleTimer);
    if (inFlight > 0 || closing) return;
    idleTimer = setTimeout(() => {
      log.info({ idleMs }, "idle; exiting");
      options.onIdle?.();
      void close();
    }, idleMs);
  };

  server.on("connection", (sock: Socket) => {
    inFlight++;
    clearTimeout(idleTimer);
    let done = false;
    sock.on("close", () => {
      if (done) return;
      done = true;
      inFlight--;
      armIdle();
    });
    readOneRequest(sock, log, async (payload) => {
      // Decoded once: a build's request streams build frames back, any other one gets one reply.
      let call: CompilerCall | Error;
      try {
        call = decodeRequest(payload);
      } catch (err) {
        call = err as Error;
      }
      if (!(call instanceof Error) && call.argv[0] === BUILD_CALL) await serveBuild(options.builds, call, sock, log);
      else sock.end(await replyTo(handler, call, log));
      if (options.isStale?.() && !closing) {
        log.info("this agent's code changed on disk; closing so the next call starts a fresh one");
        void close();
      }
    });
  });

  await listen(server, socketPath);
  server.on("error", (err) => log.error({ err }, "agent socket failed"));
  // Remember which socket file is ours, so closing never removes a successor's.
  const ino = statSync(socketPath).ino;
  const pid = options.pid ?? process.pid;
  writeFileSync(files.pid, `${pid}\n`);
  rmSync(files.starting, { force: true });
  log.info({ socketPath, pid, idleMs }, "agent listening");
  armIdle();

  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearTimeout(idleTimer);
      // Unlink first: a client arriving from now on finds no socket and starts a fresh agent instead of
      // connecting to one that is going away.
      removeOwnFiles(socketPath, ino, files.pid, pid);
      await new Promise<void>((r) => server.close(() => r()));
      resolveClosed();
    })();
    return closing;
  };

  return { socketPath, closed, close };
}

/** Reads one framed request from the connection and hands it to `serve`; a bad frame or a hang-up before a whole request gets nothing back. */
function readOneRequest(sock: Socket, log: Logger, serve: (payload: Buffer) => Promise<void>): void {
  sock.on("error", (err) => log.debug({ err }, "client connection failed"));
  const reader = new FrameReader();
  let served = false;
  // A client that hangs up before a whole request (a liveness probe, a killed client) gets nothing back.
  sock.on("end", () => {
    if (!served) sock.destroy();
  });
  sock.on("data", (chunk: Buffer) => {
    if (served) return;
    let frames: Buffer[];
    try {
      frames = reader.push(chunk);
    } catch (err) {
      log.warn({ err }, "bad frame from a client");
      served = true;
      sock.destroy();
      return;
    }
    if (frames.length === 0) return;
    served = true;
    void serve(frames[0]!);
  });
}

/** A build through `serve`, or NOT_SERVED without it or when it fails before its exit frame. */
async function serveBuild(serve: AgentOptions["builds"], call: CompilerCall, sock: Socket, log: Logger): Promise<void> {
  try {
    if (serve) return await serve(call, sock);
  } catch (err) {
    log.warn({ err }, "the build server failed; the client builds in its own process");
  }
  if (!sock.writableEnded) sock.end(encodeBuildFrame(BuildFrame.NOT_SERVED));
}

/** The handler's answer to one request (or why it could not be decoded), encoded; FALLBACK when the handler declines or fails. */
async function replyTo(handler: CallHandler, call: CompilerCall | Error, log: Logger): Promise<Buffer> {
  try {
    if (call instanceof Error) throw call;
    const r = await handler.handle(call);
    // REWRITE: orion-sh runs this command string in its real shell instead of the line it was given.
    if (r.rewrite !== undefined) return encodeReply({ status: ReplyStatus.REWRITE, exitCode: 0, stdout: Buffer.from(r.rewrite), stderr: r.stderr });
    // FALLBACK is also how the handler says "not mine: run it yourself" — the client execs the compiler.
    return r.runInClient
      ? encodeReply({ status: ReplyStatus.FALLBACK, exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) })
      : encodeReply({ status: ReplyStatus.DONE, ...r });
  } catch (err) {
    // The client runs the compiler itself on FALLBACK: one bad call never fails the build nor kills the agent.
    log.warn({ err }, "call failed in the agent; the client will run the compiler itself");
    return encodeReply({ status: ReplyStatus.FALLBACK, exitCode: -1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
  }
}

function listen(server: Server, socketPath: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Removes the socket and pid files if they are still this agent's (same inode, same pid), never a successor's. */
function removeOwnFiles(socketPath: string, ino: number, pidFile: string, pid: number): void {
  try {
    if (statSync(socketPath).ino === ino) rmSync(socketPath, { force: true });
  } catch {
    /* already gone */
  }
  try {
    if (readFileSync(pidFile, "utf8").trim() === String(pid)) rmSync(pidFile, { force: true });
  } catch {
    /* already gone */
  }
}
