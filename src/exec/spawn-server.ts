// Starts each tool through native/build/orion-spawn, a small helper process started once, so no child is fork()ed from Node.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, existsSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getSystemErrorMap } from "node:util";
import { silentLogger, type Logger } from "../core/index.js";

/** Must match PROTOCOL_VERSION in native/spawn/orion-spawn.c. */
const PROTOCOL_VERSION = 1;

export interface SpawnServerRunOptions {
  cwd: string;
  /** The child's whole environment; argv[0] is looked up on its PATH. */
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Cap on captured stdout and stderr, each: past it the group is killed and maxBufferExceeded is set. */
  maxBuffer?: number;
}

export interface SpawnServerResult {
  pid: number;
  /** The exit code, or null when a signal ended the child. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Set when this side killed the group: the timeout passed, or `signal` was aborted. */
  stoppedBy?: "timeout" | "cancel";
  maxBufferExceeded: boolean;
}

/** The child could not be started; `code` is the errno name (ENOENT: no such program). */
export class SpawnError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(file: string, errno: number) {
    const [code, message] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, `error ${errno}`];
    super(`spawn ${file} ${code}: ${message}`);
    this.name = "SpawnError";
    this.code = code;
    this.errno = errno;
  }
}

/** The server died while the child ran (its group has been killed). */
class SpawnServerLostError extends Error {}

/** The binary beside this checkout: `<dir holding package.json>/native/build/orion-spawn`, from src/exec or dist/src/exec. */
export function defaultSpawnServerBinary(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "native", "build", "orion-spawn");
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

interface Pending {
  file: string;
  pid?: number;
  started: (pid: number) => void;
  failed: (err: Error) => void;
  data: (stream: "O" | "E", chunk: Buffer) => void;
  exited: (exitCode: number | null, signal: NodeJS.Signals | null) => void;
}

/** Number → name; the first name wins (SIGABRT, not SIGIOT), as in Node's own exit events. */
const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(osConstants.signals)) if (!signalNames.has(n)) signalNames.set(n, name as NodeJS.Signals);

function frame(fields: string[]): Buffer {
  const body = Buffer.from(fields.join("\0") + "\0", "utf8");
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * One orion-spawn process, started on first use and shared by every run. It never keeps Node alive
 * while idle. When the binary is missing or will not start, run() returns undefined and the caller
 * runs the tool itself.
 */
export class SpawnServer {
  private readonly binary: string | undefined;
  private readonly logger: Logger;
  private child?: ChildProcess;
  /** Resolves true once the server has said hello, false when it cannot be used. */
  private ready?: Promise<boolean>;
  private usable = true;
  private closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private inbuf: Buffer = Buffer.alloc(0);

  constructor(options: { binary?: string; logger?: Logger } = {}) {
    this.binary = "binary" in options ? options.binary : defaultSpawnServerBinary();
    this.logger = (options.logger ?? silentLogger).child({ module: "spawn-server" });
  }

  /**
   * Runs argv in its own process group, capturing stdout and stderr. Resolves undefined, having started
   * nothing, when the server is unavailable; rejects with a SpawnError when the program cannot be started.
   */
  async run(argv: readonly string[], options: SpawnServerRunOptions): Promise<SpawnServerResult | undefined> {
    if (!this.usable) return undefined;
    // Checked again after the wait: the server may have died meanwhile, and nobody would answer.
    if (!(await this.start()) || !this.usable) return undefined;
    const child = this.child!;
    const file = argv[0] ?? "";
    const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
    if ([...argv, ...env, options.cwd].some((s) => s.includes("\0"))) {
      throw new TypeError(`spawn ${file}: an argument or environment entry contains a NUL byte`);
    }
    const id = this.nextId++;
    if (this.nextId > 0xffff_ffff) this.nextId = 1;
    const request = frame(["spawn", String(id), resolve(options.cwd), String(argv.length), ...argv, String(env.length), ...env]);

    const maxBuffer = options.maxBuffer ?? Infinity;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const size = { O: 0, E: 0 };
    let maxBufferExceeded = false;
    let stoppedBy: "timeout" | "cancel" | undefined;
    let pid: number | undefined;
    const kill = () => this.killGroup(id, pid);
    const onAbort = () => {
      stoppedBy ??= "cancel";
      kill();
    };

    const done = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>((resolveDone, rejectDone) => {
      this.pending.set(id, {
        file,
        started: (p) => {
          pid = p;
        },
        failed: rejectDone,
        data: (stream, chunk) => {
          if (maxBufferExceeded) return;
          const room = maxBuffer - size[stream];
          if (chunk.length > room) {
            maxBufferExceeded = true;
            kill();
            return;
          }
          size[stream] += chunk.length;
          (stream === "O" ? out : err).push(chunk);
        },
        exited: (exitCode, signal) => resolveDone({ exitCode, signal }),
      });
    });
    if (this.pending.size === 1) this.ref(true);
    child.stdin!.write(request);
    const timer = setTimeout(() => {
      stoppedBy ??= "timeout";
      kill();
    }, options.timeoutMs);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    try {
      const { exitCode, signal } = await done;
      return { pid: pid!, exitCode, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), stoppedBy, maxBufferExceeded };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      this.pending.delete(id);
      if (this.pending.size === 0) this.ref(false);
    }
  }

  /** Stops the server; children still running are killed with their groups. */
  close(): void {
    this.usable = false;
    this.closed = true;
    const child = this.child;
    if (!child) return;
    this.fail(new SpawnServerLostError("the spawn server was closed"));
    child.stdin?.destroy();
    child.stdout?.destroy();
    child.kill("SIGKILL");
  }

  /** For tests and logs: the server's pid while it runs. */
  get serverPid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  private start(): Promise<boolean> {
    this.ready ??= this.launch();
    return this.ready;
  }

  private launch(): Promise<boolean> {
    const binary = this.binary;
    try {
      if (!binary) throw new Error("no package.json above this module");
      accessSync(binary, fsConstants.X_OK);
    } catch (err) {
      this.logger.debug({ binary, err: (err as Error).message }, "no spawn server; tools are spawned from Node");
      this.usable = false;
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolveReady) => {
      let hello = false;
      const unusable = (why: string) => {
        this.usable = false;
        if (!hello) {
          this.logger.debug({ binary, why }, "the spawn server did not start; tools are spawned from Node");
          resolveReady(false);
        } else if (!this.closed) {
          this.logger.warn({ binary, why }, "the spawn server died; tools are spawned from Node from now on");
        }
        this.fail(new SpawnServerLostError(`the spawn server died (${why})`));
      };
      const child = spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] });
      this.child = child;
      child.on("error", (err) => unusable(err.message));
      child.on("exit", (code, signal) => unusable(signal ? `killed by ${signal}` : `exit code ${code}`));
      child.stdin!.on("error", () => undefined); // EPIPE after a crash: reported by "exit"
      child.stdout!.on("data", (chunk: Buffer) => {
        try {
          this.receive(chunk, () => {
            hello = true;
            if (this.pending.size === 0) this.ref(false);
            resolveReady(true);
          });
        } catch (err) {
          child.kill("SIGKILL");
          unusable((err as Error).message);
        }
      });
      // Until the hello, the server's stdout keeps Node alive (a run is waiting for it); then only pending runs do.
      child.unref();
    });
  }

  /** While a run is pending the server's output keeps Node alive; otherwise nothing of it does. */
  private ref(on: boolean): void {
    const streams = [this.child?.stdout, this.child?.stdin] as ({ ref(): void; unref(): void } | null | undefined)[];
    for (const s of streams) {
      if (s && typeof s.ref === "function") on ? s.ref() : s.unref();
    }
  }

  private receive(chunk: Buffer, onHello: () => void): void {
    let buf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32LE(at);
      if (buf.length - at - 4 < len) break;
      if (len < 5) throw new Error("malformed reply from the spawn server");
      const type = buf[at + 4]!;
      const id = buf.readUInt32LE(at + 5);
      const body = buf.subarray(at + 9, at + 4 + len);
      at += 4 + len;
      if (type === 0x48 /* H */) {
        if (id !== PROTOCOL_VERSION) throw new Error(`the spawn server speaks protocol ${id}, not ${PROTOCOL_VERSION}`);
        onHello();
        continue;
      }
      const p = this.pending.get(id);
      if (!p) continue;
      switch (type) {
        case 0x50: // P
          p.pid = body.readInt32LE(0);
          p.started(p.pid);
          break;
        case 0x46: // F
          p.failed(new SpawnError(p.file, body.readInt32LE(0)));
          break;
        case 0x4f: // O
        case 0x45: // E
          p.data(type === 0x4f ? "O" : "E", body);
          break;
        case 0x58: {
          // X
          const code = body.readInt32LE(0);
          const sig = body.readInt32LE(4);
          p.exited(code >= 0 ? code : null, sig >= 0 ? (signalNames.get(sig) ?? (`SIG${sig}` as NodeJS.Signals)) : null);
          break;
        }
        default:
          throw new Error(`unknown reply ${type} from the spawn server`);
      }
    }
    this.inbuf = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
  }

  private killGroup(id: number, pid: number | undefined): void {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.stdin?.writable) {
      // The server kills only a child it has not reaped, so a recycled group id is never hit.
      child.stdin.write(frame(["kill", String(id), String(osConstants.signals.SIGKILL)]));
    } else if (pid !== undefined) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // ESRCH: the group is already gone.
      }
    }
  }

  /** Fails every pending run, killing the groups of those that started. */
  private fail(err: Error): void {
    for (const p of this.pending.values()) {
      if (p.pid !== undefined) {
        try {
          process.kill(-p.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      p.failed(err);
    }
  }
}
