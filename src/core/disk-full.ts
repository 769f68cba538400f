// One infrastructure error for a full disk or an exhausted quota (ENOSPC, EDQUOT, SQLite's SQLITE_FULL), whichever store hit it:
// it names the store, its folder and the space it needs, so a build ends with exit 3 and that line — never as a usage error
// blaming a source file, never as a hang.
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { ExitCode, OrionError, Status } from "./errors.js";

const FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
/** The same causes once they travelled as text (an action's error in a build event, a gRPC status's details). */
const FULL_TEXT = /\b(ENOSPC|EDQUOT|SQLITE_FULL)\b|no space left|database or disk is full|disk quota exceeded/i;

/** Whether `err` (or any error in its `cause` chain, or a message carried as text) says a disk or a quota is full. */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DiskFullError) return true;
    if (typeof e === "string") return FULL_TEXT.test(e);
    if (typeof e !== "object") return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && FULL_CODES.has(code)) return true;
    if (e instanceof Error && FULL_TEXT.test(e.message)) return true;
  }
  return false;
}

export class DiskFullError extends OrionError {
  constructor(
    /** What could not be written: "the blob store", "the stat cache", "the build tree"… */
    readonly store: string,
    /** The folder it lives in. */
    readonly dir: string,
    /** Bytes the failed write needed at least, when known. */
    readonly needBytes: number | undefined,
    /** Bytes free on that folder's file system when the write failed, when it could be asked. */
    readonly freeBytes: number | undefined,
    cause?: unknown,
  ) {
    super(diskFullMessage(store, dir, needBytes, freeBytes), { exitCode: ExitCode.INFRASTRUCTURE, code: Status.RESOURCE_EXHAUSTED, cause });
    this.name = "DiskFullError";
  }

  /** The same error, needing `bytes` more (a caller that knows more of what remains to be written than the failed write did). */
  needing(bytes: number): DiskFullError {
    return bytes > (this.needBytes ?? 0) ? new DiskFullError(this.store, this.dir, bytes, this.freeBytes, this.cause) : this;
  }
}

/**
 * isDiskFull, or an I/O error from SQLite while the folder's file system has no room left: SQLite reports a shared-memory
 * or journal file it could not extend on a full disk as SQLITE_IOERR, not SQLITE_FULL.
 */
export function isDiskFullAt(err: unknown, dir: string): boolean {
  if (isDiskFull(err)) return true;
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("SQLITE_IOERR")) return (freeBytesAt(dir) ?? Infinity) < 64 * 1024;
  }
  return false;
}

/** `err` as a DiskFullError for `store` in `dir` when it says the disk is full (kept when it already is one); otherwise `err` itself. */
export function asDiskFull(err: unknown, store: string, dir: string, needBytes?: number): unknown {
  if (err instanceof DiskFullError) return needBytes ? err.needing(needBytes) : err;
  if (!isDiskFull(err)) return err;
  return new DiskFullError(store, dir, needBytes, freeBytesAt(dir), err);
}

/** Bytes an unprivileged writer may still use on the file system holding `dir` (undefined when it cannot be asked). */
export function freeBytesAt(dir: string): number | undefined {
  for (let d = dir; ; ) {
    try {
      const s = statfsSync(d);
      return s.bavail * s.bsize;
    } catch {
      const parent = dirname(d); // not made yet (a store's first write): its parent's file system
      if (parent === d) return undefined;
      d = parent;
    }
  }
}

/**
 * The one line to say about a full disk: a DiskFullError's own message, or the text of one that crossed a wire or an
 * event (it names its store already); else a line naming `store` in the folder of the path the system error carries
 * (`dir` when it carries none), with the original error after it.
 */
export function diskFullLine(err: unknown, store: string, dir: string): string {
  if (err instanceof DiskFullError) return err.message;
  const text = typeof err === "string" ? err : err instanceof Error ? err.message : String(err);
  if (text.startsWith("no space left for ")) return text;
  const path = (err as { path?: unknown } | undefined)?.path;
  const where = typeof path === "string" ? dirname(path) : dir;
  return `${new DiskFullError(store, where, undefined, freeBytesAt(where)).message} (${text})`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function diskFullMessage(store: string, dir: string, need: number | undefined, free: number | undefined): string {
  const freeText = free === undefined ? "" : `${formatBytes(free)} free`;
  const needText = need ? `it needs at least ${formatBytes(need)} more` : free === undefined ? "it needs more space" : `it needs more than the ${freeText}`;
  return `no space left for ${store} in ${dir}: ${needText}${need && free !== undefined ? ` (${freeText})` : ""}`;
}
