// One error type and one exit-code table shared by every command (DESIGN.md, Contract).

export const ExitCode = {
  OK: 0,
  BUILD_FAILED: 1,
  USAGE: 2,
  INFRASTRUCTURE: 3,
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** gRPC status codes used in domain errors (numeric, so no domain code imports grpc-js). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export interface OrionErrorOptions {
  exitCode?: ExitCode;
  /** gRPC status the error maps to on the wire. */
  code?: number;
  cause?: unknown;
}

export class OrionError extends Error {
  readonly exitCode: ExitCode;
  readonly code: number;
  constructor(message: string, options: OrionErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OrionError";
    this.exitCode = options.exitCode ?? ExitCode.INFRASTRUCTURE;
    this.code = options.code ?? Status.INTERNAL;
  }
}

/** A bad flag, value, file or directory given by the user: one line, exit 2. */
export class UsageError extends OrionError {
  constructor(message: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.USAGE, code: Status.INVALID_ARGUMENT, cause });
    this.name = "UsageError";
  }
}

/** A blob whose bytes do not match its digest, or a truncated one. */
export class CorruptBlobError extends OrionError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.INFRASTRUCTURE, code: Status.DATA_LOSS });
    this.name = "CorruptBlobError";
  }
}

/**
 * Decides retry-elsewhere versus report-to-user: infrastructure failures (a
 * lost node, a sandbox error, a timeout, a corrupt blob) are retried; a
 * compiler's own error never is.
 */
export function isInfrastructureError(err: unknown): boolean {
  if (err instanceof UsageError) return false;
  if (err instanceof OrionError) return err.exitCode === ExitCode.INFRASTRUCTURE;
  return true;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
