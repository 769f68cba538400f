// The embedded default: a head and one node in this process, wired through the same interfaces the farm uses over gRPC.
import { makeDirSync } from "../core/fs.js";

import { join } from "node:path";
import { hostname } from "node:os";
import { type Digest, DiskFullError, freeBytesAt, isDiskFullAt, type Logger, randomIds, systemClock, UsageError, errorMessage } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { type ActionCache, SqliteActionCache } from "../cache/index.js";
import { StatCache } from "../merkle/index.js";
import { StepCache } from "../steps/step-cache.js";
import { Head, SqliteDurationHistory } from "../head/index.js";
import { Node } from "../node/index.js";
import { LocalExecutor, createSandbox, type ActionSandbox } from "../exec/index.js";

export interface EmbeddedOptions {
  cacheDir: string;
  slots: number;
  maxCacheBytes: number;
  logger: Logger;
  /** True: tools run unsandboxed (the user asked: --unsandboxed / ORION_UNSANDBOXED=1). */
  unsandboxed?: boolean;
  /** Told once, at the first action, when the sandbox cannot work here (no user namespaces, no bwrap): tools then run unsandboxed. */
  onSandboxUnavailable?(reason: string): void;
}

export interface Embedded {
  head: Head;
  store: BlobStore;
  cache: ActionCache;
  statCache: StatCache;
  close(): Promise<void>;
}

/** Opens the per-user cache folder's stores; an unusable folder is the user's to fix (exit 2). */
export function openCacheDir(cacheDir: string): {
  store: (max: number, logger?: Logger) => BlobStore;
  cache: () => ActionCache;
  statCache: () => StatCache;
  stepCache: () => StepCache;
} {
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
    store: (maxBytes, logger) => wrap("the blob store", () => createBlobStore({ dir: join(cacheDir, "cas"), maxBytes, logger })),
    cache: () => wrap("the action cache", () => new SqliteActionCache(join(cacheDir, "action-cache.db"))),
    statCache: () => wrap("the stat cache", () => new StatCache(join(cacheDir, "stat-cache.db"))),
    stepCache: () => wrap("the step cache", () => new StepCache(join(cacheDir, "step-cache.db"))),
  };
}

export async function startEmbedded(o: EmbeddedOptions): Promise<Embedded> {
  const open = openCacheDir(o.cacheDir);
  const store = open.store(o.maxCacheBytes, o.logger);
  const cache = open.cache();
  const statCache = open.statCache();
  const durations = new SqliteDurationHistory(join(o.cacheDir, "durations.db"));
  const head = new Head({
    durations,
    store,
    cache,
    clock: systemClock,
    ids: randomIds,
    logger: o.logger,
    externalDigest: (p): Promise<Digest | undefined> => statCache.digestOf(p).catch(() => undefined),
  });
  const workDir = join(o.cacheDir, "work");
  // Probed at the first action, not here: a build served from the cache runs no tool and pays nothing for it.
  let sandbox: Promise<ActionSandbox | undefined> | undefined;
  const lazySandbox = (): Promise<ActionSandbox | undefined> =>
    (sandbox ??= createSandbox({ probeDir: join(workDir, "sb"), logger: o.logger }).then(
      (s) => {
        o.logger.debug({ sandbox: s.description }, "actions run sandboxed");
        return s;
      },
      (err: unknown) => {
        o.onSandboxUnavailable?.(errorMessage(err));
        return undefined;
      },
    ));
  const executor = new LocalExecutor({ store, workDir, workerName: hostname(), logger: o.logger, sandbox: o.unsandboxed ? undefined : lazySandbox });
  const node = new Node({
    name: hostname(),
    slots: o.slots,
    head,
    executor,
    logger: o.logger,
    toolchains: [{ name: "*", digest: "*", path: "" }],
    leaseWaitMs: 60_000,
  });
  await node.start();
  return {
    head,
    store,
    cache,
    statCache,
    async close() {
      head.close();
      await node.stop();
      await executor.close();
      await (await sandbox)?.close();
      statCache.close();
      durations.close();
      cache.close();
      store.close();
    },
  };
}
