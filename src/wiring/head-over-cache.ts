// A head over a cache folder's stores — the same layout for the embedded build and `orion head` (cas/, action-cache.db, stat-cache.db, durations.db).
import { join } from "node:path";
import { type Digest, type Logger, randomIds, systemClock } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { ActionCache } from "../cache/index.js";
import type { StatCache } from "../merkle/index.js";
import { Head, type HeadOptions, SqliteDurationHistory } from "../head/index.js";
import { openCacheDir } from "../store/index.js";

export interface HeadOverCache {
  head: Head;
  store: BlobStore;
  cache: ActionCache;
  statCache: StatCache;
  /** Closes the stores (after the head and whatever uses them stopped). */
  closeStores(): void;
}

/** The head's timing options; the stores, clock, ids and external digests come from the folder. */
export type HeadTiming = Pick<HeadOptions, "heartbeatMs" | "nodeTtlMs" | "keepFinishedMs">;

export function openHeadOverCache(dir: string, maxCacheBytes: number, logger: Logger, timing: HeadTiming = {}, o: { soleWriter?: boolean } = {}): HeadOverCache {
  const open = openCacheDir(dir);
  const store = open.store(maxCacheBytes, logger, o.soleWriter);
  const cache = open.cache();
  const statCache = open.statCache();
  const durations = new SqliteDurationHistory(join(dir, "durations.db"));
  const head = new Head({
    durations,
    store,
    cache,
    clock: systemClock,
    ids: randomIds,
    logger,
    ...timing,
    // Files outside a project (system libraries, -I/opt/...) are named by their bytes on the head's machine.
    externalDigest: (p): Promise<Digest | undefined> => statCache.digestOf(p).catch(() => undefined),
  });
  return {
    head,
    store,
    cache,
    statCache,
    closeStores() {
      statCache.close();
      durations.close();
      cache.close();
      store.close();
    },
  };
}
