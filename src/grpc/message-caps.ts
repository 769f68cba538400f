// Per-method caps on request messages: a control call gets a few KiB to a MiB, blob batches and chunks a few MiB, only SubmitBuild the server-wide maximum.
//
// grpc-js takes one receive limit per server (`grpc.max_receive_message_length`, checked against each message's length
// prefix before its body is buffered), not one per method. So the server's limit is the largest cap below, and each
// method's own cap is enforced twice:
// - early, where grpc-js 1.14 allows it: the interceptor lowers the call's own frame decoder limit to the method's cap,
//   so an oversized message is refused from its 5-byte length prefix, before its body is buffered (16 concurrent 60 MB
//   Register calls: the head's peak memory stays near idle instead of 1.2 GB). This reaches into the call's internals,
//   so it is feature-detected: when they differ (another grpc-js, another interceptor first), the late check stands alone;
// - late, always: the method's deserializer hands an oversized message on as an OversizedMessage marker instead of
//   decoding it, and the interceptor answers that marker with RESOURCE_EXHAUSTED naming the method and its cap,
//   before any handler sees the call.
import * as grpc from "@grpc/grpc-js";
import { Status } from "../core/index.js";
import { BATCH_BYTES, CHUNK_BYTES, MAX_MESSAGE_BYTES } from "./limits.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Room for a batch's per-entry framing (digests, statuses) beyond its blob bytes. */
const BATCH_CAP = 2 * BATCH_BYTES;

/**
 * The largest request each method takes, by full method path. A method missing here gets DEFAULT_CAP; a test checks
 * every method of every service has an entry, so a new RPC is given its cap on purpose.
 */
export const MESSAGE_CAPS: Readonly<Record<string, number>> = {
  // Up to FIND_MISSING_BATCH (4,096) digests of ~75 bytes each.
  "/orion.v1.Blobs/FindMissingBlobs": 1 * MiB,
  "/orion.v1.Blobs/BatchUpdateBlobs": BATCH_CAP,
  "/orion.v1.Blobs/BatchReadBlobs": BATCH_CAP,
  "/orion.v1.Blobs/ReadBlob": 64 * KiB,
  // One chunk of a streamed upload.
  "/orion.v1.Blobs/WriteBlob": CHUNK_BYTES + 64 * KiB,
  "/orion.v1.Blobs/ReadTree": 64 * KiB,
  // A node's name, slots and toolchains.
  "/orion.v1.NodeControl/Register": 256 * KiB,
  // The hashes of the contexts a node holds (up to 4,096).
  "/orion.v1.NodeControl/Heartbeat": 1 * MiB,
  "/orion.v1.NodeControl/Lease": 1 * MiB,
  // A result: output names and digests, a depfile, and captured output up to the node's INLINE_OUTPUT_BYTES (1 MiB) each: more goes by digest.
  "/orion.v1.NodeControl/ReportResult": 8 * MiB,
  "/orion.v1.NodeControl/Leave": 64 * KiB,
  "/orion.v1.NodeControl/Attach": 64 * KiB,
  // A whole build graph: the one large request.
  "/orion.v1.Builds/SubmitBuild": MAX_MESSAGE_BYTES,
  "/orion.v1.Builds/WatchBuild": 64 * KiB,
  // The ids of the actions that finished together.
  "/orion.v1.Builds/GetResults": 4 * MiB,
  // A build of one action (a compile's argv and environment).
  "/orion.v1.Builds/RunAction": 4 * MiB,
  "/orion.v1.Builds/CancelBuild": 64 * KiB,
  "/orion.v1.Builds/LeaseHostSteps": 64 * KiB,
  "/orion.v1.Builds/ReportHostStep": 64 * KiB,
  "/orion.v1.Builds/GetStatus": 64 * KiB,
};

const DEFAULT_CAP = 1 * MiB;

/** The server-wide receive limit: the largest per-method cap, so no method's cap is ever below what grpc-js lets through. */
export const SERVER_RECEIVE_LIMIT = Math.max(DEFAULT_CAP, ...Object.values(MESSAGE_CAPS));

export function capFor(path: string): number {
  return MESSAGE_CAPS[path] ?? DEFAULT_CAP;
}

/** What a method's deserializer yields for a request over its cap: the bytes are dropped undecoded. */
export class OversizedMessage {
  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly cap: number,
  ) {}

  get details(): string {
    const method = this.path.slice(this.path.lastIndexOf("/") + 1);
    return `${method}: a request message of ${this.bytes} bytes is over this method's cap of ${this.cap} bytes`;
  }
}

/** A service definition whose request deserializers refuse messages over their method's cap (serve with messageCapInterceptor). */
export function withMessageCaps<T extends grpc.ServiceDefinition>(definition: T): T {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition) as [string, grpc.MethodDefinition<unknown, unknown>][]) {
    const cap = capFor(method.path);
    const decode = method.requestDeserialize;
    out[name] = { ...method, requestDeserialize: (bytes: Buffer) => (bytes.length > cap ? new OversizedMessage(method.path, bytes.length, cap) : decode(bytes)) };
  }
  return out as T;
}

/** The parts of grpc-js's base server call (BaseServerInterceptingCall, 1.14) the early check uses. */
interface FrameDecoder {
  maxReadMessageLength: number;
  write(data: Buffer): Buffer[];
}

/**
 * Lowers the call's frame decoder limit to `cap`, so a message over it is refused from its length prefix; its refusal
 * (which grpc-js sends as RESOURCE_EXHAUSTED with the thrown message) names the method and the cap. False when the call
 * is not the shape this knows (the late check then stands alone).
 */
function capFrameDecoder(call: unknown, path: string, cap: number): boolean {
  const decoder = (call as { decoder?: Partial<FrameDecoder> } | undefined)?.decoder;
  if (!decoder || typeof decoder.maxReadMessageLength !== "number" || typeof decoder.write !== "function") return false;
  if (decoder.maxReadMessageLength !== -1 && decoder.maxReadMessageLength < cap) return true;
  decoder.maxReadMessageLength = cap;
  const write = decoder.write.bind(decoder);
  decoder.write = (data: Buffer) => {
    try {
      return write(data);
    } catch (err) {
      const bytes = /\((\d+) vs/.exec(String((err as Error)?.message))?.[1];
      throw bytes ? new Error(new OversizedMessage(path, Number(bytes), cap).details) : err;
    }
  };
  return true;
}

/** Ends a call whose request comes in over its cap with RESOURCE_EXHAUSTED, before its handler sees the message. Keep it first among a server's interceptors. */
export const messageCapInterceptor: grpc.ServerInterceptor = (method, call) => {
  capFrameDecoder(call, method.path, capFor(method.path));
  return new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMessage: (message, pass) => {
          if (message instanceof OversizedMessage) call.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details: message.details });
          else pass(message);
        },
      }),
  });
};
