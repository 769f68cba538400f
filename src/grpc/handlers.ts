// Unary and server-streaming handlers as async functions: authentication first, then the domain call; a thrown error keeps its status code.
import * as grpc from "@grpc/grpc-js";
import type { Authenticator } from "./auth.js";
import { toStatus } from "./errors.js";

export function unary<Req, Res>(
  auth: Authenticator,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const denied = auth(call.metadata);
    if (denied) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: denied });
      return;
    }
    fn(call.request, call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toStatus(err)),
    );
  };
}

/** A server-streaming handler: authentication first, then `fn` writes and ends the call; a thrown error ends it with its status. */
export function serverStream<Req, Res>(
  auth: Authenticator,
  fn: (req: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const denied = auth(call.metadata);
    if (denied) {
      call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: denied });
      return;
    }
    fn(call.request, call).catch((err: unknown) => call.emit("error", toStatus(err)));
  };
}
