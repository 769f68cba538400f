// The content-addressed store's one small interface; decorators and backends implement it.
import type { Digest } from "../core/index.js";

export interface BlobStore {
  /** The digests of `digests` that the store does not hold (corrupt blobs count as missing). */
  findMissing(digests: readonly Digest[]): Promise<Digest[]>;
  has(digest: Digest): Promise<boolean>;
  /** Stores bytes; when `expected` is given and does not match, throws CorruptBlobError and stores nothing. */
  put(data: Uint8Array, expected?: Digest): Promise<Digest>;
  /** Stores a file's bytes (streamed, verified against `expected` when given). */
  putFile(path: string, expected?: Digest): Promise<Digest>;
  /** The bytes, verified; undefined when absent or corrupt (a corrupt blob is dropped). */
  get(digest: Digest): Promise<Buffer | undefined>;
  /**
   * Makes `dest` hold the blob's bytes: a hard link to the stored file when the
   * store is local and on the same file system, else a copy. Returns false when
   * the blob is absent. `executable` sets mode 0555 (copy) instead of 0444.
   */
  materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean>;
  /** Total bytes held. */
  sizeBytes(): number;
  close(): void;
}
