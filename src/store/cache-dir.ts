// Opens the stores of a per-user cache folder (a client's cache, a head's data dir): an unusable folder is the user's to fix (exit 2), a full disk the machine's (exit 3).
import { join } from "node:path";
import { DiskFullError, freeBytesAt, isDiskFullAt, type Logger, UsageError, errorMessage, makeDirSync } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { type ActionCache, SqliteActionCache } from "../cache/index.js";
import { StatCache } from "../merkle/index.js";
// The file, not steps/index.js: `orion cc` opens this folder and must not load the host-step runner.
import { StepCache } from "../steps/step-cache.js";

/** The stores of one cache folder, each opened on first call. */
export interface CacheDir {
  /** soleWriter: only this process uses the folder (a head daemon's data dir; see SqliteBlobStoreOptions.soleWriter). */
  store: (max: number, logger?: Logger, soleWriter?: boolean) => BlobStore;
  cache: () => ActionCache;
  statCache: () => StatCache;
  stepCache: () => StepCache;
}

/** Opens the per-user cache folder's stores; an unusable folder is the user's to fix (exit 2). */
export function openCacheDir(cacheDir: string): CacheDir {
  try {
    makeDirSync(cacheDir);
  } catch (err) {
    throw new UsageError(`cannot create the cache directory ${cacheDir}: ${errorMessage(err)}`, err);
  }
  const wrap = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      // A full disk is the machine's state, not a bad folder: exit 3 with the store named, not exit 2.
      if (isDiskFullAt(err, cacheDir)) throw err instanceof DiskFullError ? err : new DiskFullError(what, cacheDir, undefined, freeBytesAt(cacheDir), err);
      if (err instanceof UsageError) throw err;
      throw new UsageError(`cannot open ${what} in ${cacheDir}: ${errorMessage(err)}`, err);
    }
  };
  return {
    store: (maxBytes, logger, soleWriter) => wrap("the blob store", () => createBlobStore({ dir: join(cacheDir, "cas"), maxBytes, logger, soleWriter })),
    cache: () => wrap("the action cache", () => new SqliteActionCache(join(cacheDir, "action-cache.db"))),
    statCache: () => wrap("the stat cache", () => new StatCache(join(cacheDir, "stat-cache.db"))),
    stepCache: () => wrap("the step cache", () => new StepCache(join(cacheDir, "step-cache.db"))),
  };
}
