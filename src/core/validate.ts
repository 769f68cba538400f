// Field checks for requests arriving at a service's edge: each refusal is an INVALID_ARGUMENT naming the method and the field.
import type { Digest } from "./digest.js";
import { ExitCode, OrionError, Status } from "./errors.js";

/** A request a peer should never have sent: INVALID_ARGUMENT on the wire, a usage error (exit 2) in-process. */
export function invalidArgument(method: string, field: string, why: string): OrionError {
  return new OrionError(`${method}: ${field} ${why}`, { code: Status.INVALID_ARGUMENT, exitCode: ExitCode.USAGE });
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What is wrong with a digest a peer sent (64 lowercase hex digits and a size ≥ 0), or undefined when it is well formed. */
export function digestProblem(d: Digest | undefined): string | undefined {
  if (!d) return "is missing";
  if (typeof d.hash !== "string" || !SHA256_HEX.test(d.hash)) return `has hash ${JSON.stringify(String(d.hash).slice(0, 80))}, not 64 lowercase hex digits`;
  if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes < 0) return `has size_bytes ${d.sizeBytes}, not a size ≥ 0`;
  return undefined;
}

export function checkDigest(method: string, field: string, d: Digest | undefined): Digest {
  const problem = digestProblem(d);
  if (problem) throw invalidArgument(method, field, problem);
  return d!;
}

/**
 * A string field: at most `max` UTF-16 units and no NUL (it ends a C string: a path would mean one thing here and
 * another to the kernel); `printable` refuses every control character too (names that reach logs and file names).
 */
export function checkText(method: string, field: Field, value: string, max: number, opts: { required?: boolean; printable?: boolean } = {}): string {
  const refuse = (why: string) => invalidArgument(method, typeof field === "string" ? field : field(), why);
  if (typeof value !== "string") throw refuse("is not a string");
  if (opts.required && value.length === 0) throw refuse("is empty");
  if (value.length > max) throw refuse(`is ${value.length} characters long, more than ${max}`);
  // eslint-disable-next-line no-control-regex
  if (opts.printable ? /[\u0000-\u001f\u007f]/.test(value) : value.includes("\0")) throw refuse(opts.printable ? "contains a control character" : "contains a NUL byte");
  return value;
}

/** A field's name, or a function making it: a graph of 10,000 actions names 100,000 fields, and only a refusal needs one. */
export type Field = string | (() => string);

/** An integer field within [min, max]. */
export function checkInt(method: string, field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalidArgument(method, field, `is ${value}, not an integer in ${min}..${max}`);
  return value;
}

/** A repeated field with at most `max` entries. */
export function checkCount(method: string, field: Field, values: readonly unknown[], max: number): void {
  if (values.length > max) throw invalidArgument(method, typeof field === "string" ? field : field(), `has ${values.length} entries, more than ${max}`);
}
