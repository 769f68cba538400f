// Putting a stored output where a cache hit restores it: unless the file there already holds those bytes.
import { existsSync } from "node:fs";
import { lstat, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import type { BlobStore } from "../cas/index.js";
import type { Digest } from "../core/index.js";
import type { StatCache } from "./stat-cache.js";

/**
 * Puts the blob `digest` at `dest` as `store.copyOut` does (mode 0755 or 0644) and tells the stat cache its digest, so
 * the archive or link that reads it next does not read it back. When `dest` already holds exactly that — one link, the
 * mode a copy would get, and the stat cache's digest for it as it is now — it only gets new times, as a copy would:
 * make judges by them. A touched header re-restores every object that includes it (and the links after them) with the
 * bytes they already have. False when the store lacks the blob, or when `dest`'s folder does not exist (a missing output
 * folder is the tool's own error to report, in its own words; only looked for when nothing is at `dest`).
 */
export async function placeOutput(store: BlobStore, statCache: StatCache, digest: Digest, dest: string, executable: boolean): Promise<boolean> {
  const st = await lstat(dest, { bigint: true }).catch(() => undefined);
  if (!st && !existsSync(dirname(dest))) return false;
  const mode = executable ? 0o755n : 0o644n;
  const held = st?.isFile() && st.nlink === 1n && (st.mode & 0o777n) === mode ? statCache.known(dest, st) : undefined;
  if (held && held.hash === digest.hash && held.sizeBytes === digest.sizeBytes) {
    const now = new Date();
    await utimes(dest, now, now);
  } else if (!(await store.copyOut(digest, dest, executable))) {
    return false;
  }
  statCache.remember(dest, await lstat(dest, { bigint: true }), digest);
  return true;
}
