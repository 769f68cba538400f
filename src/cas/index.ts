// The content-addressed store's public surface, and the one factory that names a concrete store.
import { type Logger, OrionError, UsageError, errorMessage } from "../core/index.js";
import type { BlobStore } from "./blob-store.js";
import { SqliteBlobStore, type VerifyReport } from "./sqlite-blob-store.js";
import { ReadThroughBlobStore } from "./read-through-blob-store.js";
import { DiskFullBlobStore } from "./disk-full-blob-store.js";

export type { BlobStore, FindMissingOptions } from "./blob-store.js";
export { DEFAULT_MAX_BYTES, type SqliteBlobStoreOptions, type VerifyReport } from "./sqlite-blob-store.js";

export interface BlobStoreConfig {
  /** Folder of the local store; created when absent. */
  dir: string;
  /** LRU eviction bound in bytes (default 10 GiB). */
  maxBytes?: number;
  /** fsync blobs before they become visible (default false). */
  fsync?: boolean;
  /** A remote store that misses fall through to (a farm node reading from its head). */
  readThrough?: BlobStore;
  /** Where rot found in the store is logged. */
  logger?: Logger;
  /** Only this process writes and evicts the store (a daemon's data dir): see SqliteBlobStoreOptions.soleWriter. */
  soleWriter?: boolean;
}

export function createBlobStore(config: BlobStoreConfig): BlobStore {
  try {
    // A full disk fails a write with one error naming this folder (exit 3), not a bare ENOSPC.
    const local = new DiskFullBlobStore(new SqliteBlobStore({ dir: config.dir, maxBytes: config.maxBytes, fsync: config.fsync, logger: config.logger, soleWriter: config.soleWriter }), config.dir);
    return config.readThrough ? readThrough(local, config.readThrough) : local;
  } catch (err) {
    const message = `cannot open the blob store in ${config.dir}: ${errorMessage(err)}`;
    // A folder the user cannot write is theirs to fix (exit 2); anything else is the machine's fault.
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (["EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST"].includes(code)) throw new UsageError(message, err);
    throw new OrionError(message, { cause: err });
  }
}

/** `local` in front of `remote`: misses are fetched from the remote and kept (for a caller that also needs `local` alone). */
export function readThrough(local: BlobStore, remote: BlobStore): ReadThroughBlobStore {
  return new ReadThroughBlobStore(local, remote);
}

/** Hashes every blob of the local store in `dir` and repairs its index (see SqliteBlobStore.verifyAll). */
export async function verifyBlobStore(dir: string): Promise<VerifyReport> {
  const store = new SqliteBlobStore({ dir });
  try {
    return await store.verifyAll();
  } finally {
    store.close();
  }
}
