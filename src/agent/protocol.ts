// The wire format between the native clients (`orion-cc`, `orion-sh`) and the agent: one request frame, one reply frame per connection.
//
// Every integer is a little-endian u32 unless noted. Each message is a frame: u32 payload length, then the payload.
//
//   request payload:  u32 version (= PROTOCOL_VERSION), u32 argc, u32 envc,
//                     then argc + 1 + envc NUL-terminated strings: argv[0..argc), cwd, env[0..envc) as "NAME=value"
//   reply payload:    u8 status, i32 exit code, u32 stdout length, stdout bytes, u32 stderr length, stderr bytes
//
// status DONE: the call ran; print the bytes and exit with the code. status FALLBACK: the agent could not serve
// the call (a version mismatch, its own failure) or declines it; the client must run the call itself — Orion's
// plumbing never fails a build. status REWRITE (orion-sh only; orion-cc takes it as FALLBACK): the stdout bytes are
// a command string, without NUL, that the client runs in its real shell instead of the one it was given, after
// printing the stderr bytes; the exit code is unused. native/common/agent-wire.c implements the same layout on the
// client side; change both together.
//
// A build (argv[0] BUILD_CALL, from native/client/orion-build.c: `orion build ARGS` sent to a running agent) is
// answered by a stream of build frames instead of one reply: each payload is u8 kind, then its bytes — STDOUT or
// STDERR bytes to print as they come, then one EXIT (i32 exit code) or one NOT_SERVED (no bytes: the client runs
// the build itself, in its own Node process). The client half-closing its side is the build's interrupt (its Ctrl-C).
import type { CompilerCall, CompilerReply } from "../cc/types.js";

export const PROTOCOL_VERSION = 1;
/** Larger frames are refused: no compiler call's argv+env, nor any sane diagnostics, come near it. */
export const MAX_FRAME = 64 << 20;

export const ReplyStatus = { DONE: 0, FALLBACK: 1, REWRITE: 2 } as const;

/** argv[0] of a build sent to the agent by the `orion build` client. */
export const BUILD_CALL = "orion-build";
export const BuildFrame = { EXIT: 0, STDOUT: 1, STDERR: 2, NOT_SERVED: 3 } as const;
export type BuildFrame = (typeof BuildFrame)[keyof typeof BuildFrame];

/** One frame of a build's answer stream. */
export function encodeBuildFrame(kind: BuildFrame, bytes: Uint8Array | string = Buffer.alloc(0)): Buffer {
  return frame(Buffer.concat([Buffer.from([kind]), typeof bytes === "string" ? Buffer.from(bytes) : bytes]));
}

export function encodeBuildExit(code: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(code, 0);
  return encodeBuildFrame(BuildFrame.EXIT, b);
}
export type ReplyStatus = (typeof ReplyStatus)[keyof typeof ReplyStatus];

export interface Reply extends CompilerReply {
  status: ReplyStatus;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

export function encodeRequest(call: CompilerCall): Buffer {
  const env = Object.entries(call.env).map(([k, v]) => `${k}=${v}`);
  const strings = [...call.argv, call.cwd, ...env];
  for (const s of strings) if (s.includes("\0")) throw new ProtocolError("a request string contains NUL");
  const head = Buffer.alloc(12);
  head.writeUInt32LE(PROTOCOL_VERSION, 0);
  head.writeUInt32LE(call.argv.length, 4);
  head.writeUInt32LE(env.length, 8);
  return frame(Buffer.concat([head, Buffer.from(strings.join("\0") + "\0", "utf8")]));
}

/** Decodes a request payload (without its length prefix). */
export function decodeRequest(payload: Buffer): CompilerCall {
  if (payload.length < 12) throw new ProtocolError(`request too short (${payload.length} bytes)`);
  const version = payload.readUInt32LE(0);
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`request version ${version}, this agent speaks ${PROTOCOL_VERSION}`);
  const argc = payload.readUInt32LE(4);
  const envc = payload.readUInt32LE(8);
  const want = argc + 1 + envc;
  const strings: string[] = [];
  let at = 12;
  while (strings.length < want) {
    const end = payload.indexOf(0, at);
    if (end < 0) throw new ProtocolError(`request has ${strings.length} strings, its counts say ${want}`);
    strings.push(payload.toString("utf8", at, end));
    at = end + 1;
  }
  if (at !== payload.length) throw new ProtocolError(`request has ${payload.length - at} bytes after its strings`);
  if (argc === 0) throw new ProtocolError("request has an empty argv");
  const env: Record<string, string> = {};
  for (const e of strings.slice(argc + 1)) {
    const eq = e.indexOf("=");
    // environ may hold entries without "="; execve passes them on, but they cannot be a variable.
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return { argv: strings.slice(0, argc), cwd: strings[argc]!, env };
}

export function encodeReply(reply: Reply): Buffer {
  // The client turns the bytes into a C string: a NUL would cut the command short without anyone noticing.
  if (reply.status === ReplyStatus.REWRITE && reply.stdout.includes(0)) throw new ProtocolError("a rewritten command string contains NUL");
  const head = Buffer.alloc(9);
  head.writeUInt8(reply.status, 0);
  head.writeInt32LE(reply.exitCode, 1);
  head.writeUInt32LE(reply.stdout.length, 5);
  const errLen = Buffer.alloc(4);
  errLen.writeUInt32LE(reply.stderr.length, 0);
  return frame(Buffer.concat([head, reply.stdout, errLen, reply.stderr]));
}

/** Decodes a reply payload (without its length prefix). */
export function decodeReply(payload: Buffer): Reply {
  if (payload.length < 13) throw new ProtocolError(`reply too short (${payload.length} bytes)`);
  const status = payload.readUInt8(0);
  if (status !== ReplyStatus.DONE && status !== ReplyStatus.FALLBACK && status !== ReplyStatus.REWRITE) throw new ProtocolError(`reply status ${status}`);
  const exitCode = payload.readInt32LE(1);
  const outLen = payload.readUInt32LE(5);
  if (9 + outLen + 4 > payload.length) throw new ProtocolError("reply stdout overruns the frame");
  const stdout = payload.subarray(9, 9 + outLen);
  const errLen = payload.readUInt32LE(9 + outLen);
  const errAt = 13 + outLen;
  if (errAt + errLen !== payload.length) throw new ProtocolError("reply stderr length disagrees with the frame");
  return { status, exitCode, stdout, stderr: payload.subarray(errAt) };
}

/**
 * Splits a byte stream into frame payloads: push() each chunk, and it returns the payloads completed so far.
 * Invariant: `pending` holds the bytes of at most one incomplete frame.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 4) {
      const len = this.pending.readUInt32LE(0);
      if (len > MAX_FRAME) throw new ProtocolError(`frame of ${len} bytes exceeds ${MAX_FRAME}`);
      if (this.pending.length < 4 + len) break;
      out.push(this.pending.subarray(4, 4 + len));
      this.pending = this.pending.subarray(4 + len);
    }
    return out;
  }

  /** Bytes received that do not yet form a whole frame. */
  get buffered(): number {
    return this.pending.length;
  }
}
