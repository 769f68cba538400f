// One unary call as a promise: failures become OrionErrors naming the peer and the call; an abort signal cancels it.
import type * as grpc from "@grpc/grpc-js";
import { fromServiceError } from "./errors.js";

export function rpc<Res>(
  start: (callback: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall,
  address: string,
  what: string,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = start((err, res) => {
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(fromServiceError(err, address, what));
      else resolve(res as Res);
    });
    const onAbort = () => call.cancel();
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
