// Unary handlers as async functions: authentication first, then the domain call; a thrown error keeps its status code.
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
