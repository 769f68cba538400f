// Directory creation that always terminates: Node 20's mkdir({ recursive: true }) loops forever where mkdir answers
// ENOENT for a path whose parent exists (anything under /proc, say), so a mistyped --data-dir or ORION_CACHE_DIR
// would hang Orion instead of failing with one line.
import { mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

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
