// Directory creation that always terminates: Node 20's mkdir({ recursive: true }) loops forever where mkdir answers
// ENOENT for a path whose parent exists (anything under /proc, say), so a mistyped --data-dir or ORION_CACHE_DIR
// would hang Orion instead of failing with one line.
import { randomBytes } from "node:crypto";
import { type BigIntStats, closeSync, fstatSync, futimesSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** mkdir -p: creates `dir` and its missing parents; throws the system's error when one cannot be made. */
export function makeDirSync(dir: string, mode?: number): void {
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      if (statSync(dir).isDirectory()) return;
      throw err;
    }
    if (code !== "ENOENT") throw err;
    const parent = dirname(dir);
    if (parent === dir) throw err;
    makeDirSync(parent, mode);
  }
  try {
    mkdirSync(dir, mode === undefined ? undefined : { mode });
  } catch (err) {
    // Made meanwhile by someone else: fine. Anything else (ENOENT under /proc) is the answer.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(dir).isDirectory()) throw err;
  }
}

/** Writes `file` whole or not at all: into a temp file beside it (named by this process), then renamed over it. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** One file, unchanged between two stats of it: the same inode, size and mtime (what a stat-keyed digest trusts). */
export function sameStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

/**
 * The kernel's file clock: the time a change made now is stamped with (a coarse tick of a few ms, which the wall clock
 * runs ahead of). Read as the ctime of this clock's own file after setting its times — two calls on an open fd, the
 * file unlinked as soon as it is open, so nothing is left behind and no name is made per reading.
 */
export class FileClock {
  private fd: number | undefined;

  /** `dir`: a folder on the file system whose stamps are wanted. */
  constructor(private readonly dir: string) {}

  /** Now on the file clock, or undefined when it cannot be read (no such folder, a read-only one). */
  nowNs(): bigint | undefined {
    try {
      if (this.fd === undefined) {
        const file = join(this.dir, `clock-${process.pid}-${randomBytes(6).toString("hex")}`);
        const fd = openSync(file, "wx");
        try {
          unlinkSync(file);
        } catch (err) {
          closeSync(fd);
          throw err;
        }
        this.fd = fd;
      }
      futimesSync(this.fd, 0, 0);
      return fstatSync(this.fd, { bigint: true }).ctimeNs;
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
