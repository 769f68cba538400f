// The content-addressed store's one small interface; decorators and backends implement it.
import type { Digest } from "../core/index.js";

export interface FindMissingOptions {
  /**
   * Hash each blob a local store holds instead of trusting its stamp (a rotten one is dropped and
   * counts as missing): for a cache hit about to hand its outputs to a user's tree. A remote store
   * ignores it (it verifies what it serves).
   */
  verify?: boolean;
}

export interface BlobStore {
  /** The digests of `digests` that the store does not hold (corrupt blobs count as missing). */
  findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]>;
  has(digest: Digest): Promise<boolean>;
  /** Stores bytes; when `expected` is given and does not match, throws CorruptBlobError and stores nothing. */
  put(data: Uint8Array, expected?: Digest): Promise<Digest>;
  /** Stores a file's bytes (streamed, verified against `expected` when given). */
  putFile(path: string, expected?: Digest): Promise<Digest>;
  /**
   * Stores a file the caller owns and will not touch again, by moving it into the store (one read
   * to hash it, no copy); the file is gone afterwards. For an action's outputs in its sandbox.
   */
  adoptFile(path: string): Promise<Digest>;
  /**
   * Writes the blob's bytes to `dest` as a new, independent file (a copy, never a link: the
   * destination is the user's to edit), atomically via a temp file, verified as it is copied.
   * False when the blob is absent, or rotten (then it is dropped and `dest` is left alone).
   */
  copyOut(digest: Digest, dest: string, executable: boolean): Promise<boolean>;
  /** The bytes, verified; undefined when absent or corrupt (a corrupt blob is dropped). */
  get(digest: Digest): Promise<Buffer | undefined>;
  /**
   * Makes `dest` hold the blob's bytes: a hard link to the stored file when the
   * store is local and on the same file system, else a copy. Returns false when
   * the blob is absent or rotten (a local store hashes the blob first and drops it when it does
   * not match). `executable` sets mode 0555 (copy) instead of 0444.
   */
  materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean>;
  /** Total bytes held. */
  sizeBytes(): number;
  close(): void;
}
