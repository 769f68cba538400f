// Status mapping at the wire: domain errors carry a numeric gRPC code out; ServiceErrors come back as OrionErrors with one clear line.
import type * as grpc from "@grpc/grpc-js";
import { ExitCode, OrionError, Status, errorMessage } from "../core/index.js";

/** What a handler failure becomes on the wire: an OrionError keeps its code, anything else is INTERNAL. */
export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const code = err instanceof OrionError ? err.code : typeof (err as { code?: unknown })?.code === "number" ? (err as { code: number }).code : Status.INTERNAL;
  return { code, details: errorMessage(err) };
}

/** A failed call, for the user: who refused what, and why; the exit code is the Contract's 3 (infrastructure), or 2 for a request refused as invalid. */
export function fromServiceError(err: unknown, address: string, what: string): OrionError {
  if (err instanceof OrionError) return err;
  const e = err as Partial<grpc.ServiceError>;
  const code = typeof e.code === "number" ? e.code : Status.UNKNOWN;
  const details = e.details || errorMessage(err);
  let message: string;
  if (code === Status.UNAUTHENTICATED) message = `the head at ${address} refused ${what}: ${details}`;
  else if (code === Status.UNAVAILABLE) message = `cannot reach the head at ${address} (${what}): ${details}`;
  else if (code === Status.DEADLINE_EXCEEDED) message = `the head at ${address} did not answer in time (${what})`;
  else message = `${what} at ${address} failed: ${details}`;
  // The peer refused what this side sent (a malformed graph, a bad node name): the Contract's 2, as it is in-process.
  const exitCode = code === Status.INVALID_ARGUMENT ? ExitCode.USAGE : ExitCode.INFRASTRUCTURE;
  return new OrionError(message, { exitCode, code, cause: err });
}
