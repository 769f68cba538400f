// The embedded default: a head and one node in this process, wired through the same interfaces the farm uses over gRPC.
import { join } from "node:path";
import { hostname } from "node:os";
import { type Logger, errorMessage } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { ActionCache } from "../cache/index.js";
import type { StatCache } from "../merkle/index.js";
import type { Head } from "../head/index.js";
import { Node } from "../node/index.js";
import { LocalExecutor, createSandbox, type ActionSandbox } from "../exec/index.js";
import { openHeadOverCache } from "./head-over-cache.js";

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

export async function startEmbedded(o: EmbeddedOptions): Promise<Embedded> {
  const { head, store, cache, statCache, closeStores } = openHeadOverCache(o.cacheDir, o.maxCacheBytes, o.logger);
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
      closeStores();
    },
  };
}
