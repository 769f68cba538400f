// A blob store whose writes that find the disk full fail as one DiskFullError naming the store's folder and the bytes the
// write needed (ENOSPC from a blob file, SQLITE_FULL from the index), instead of a bare errno that callers would blame on
// whatever file they were reading at the time.
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { asDiskFull, type Digest } from "../core/index.js";
import type { BlobStore, FindMissingOptions } from "./blob-store.js";

export class DiskFullBlobStore implements BlobStore {
  constructor(
    private readonly inner: BlobStore,
    /** The store's folder, named in the error. */
    private readonly dir: string,
  ) {}

  findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    return this.guard(() => this.inner.findMissing(digests, options));
  }

  has(digest: Digest): Promise<boolean> {
    return this.guard(() => this.inner.has(digest));
  }

  put(data: Uint8Array, expected?: Digest): Promise<Digest> {
    return this.guard(() => this.inner.put(data, expected), data.length);
  }

  async putFile(path: string, expected?: Digest): Promise<Digest> {
    try {
      return await this.inner.putFile(path, expected);
    } catch (err) {
      const size = expected?.sizeBytes ?? (await stat(path).then((s) => s.size, () => undefined));
      throw asDiskFull(err, "the blob store", this.dir, size);
    }
  }

  async adoptFile(path: string): Promise<Digest> {
    const size = await stat(path).then((s) => s.size, () => undefined);
    return this.guard(() => this.inner.adoptFile(path), size);
  }

  async copyOut(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    try {
      return await this.inner.copyOut(digest, dest, executable);
    } catch (err) {
      // The copy's side is the user's tree, not this store.
      throw asDiskFull(err, "the build tree", dirname(dest), digest.sizeBytes);
    }
  }

  get(digest: Digest): Promise<Buffer | undefined> {
    return this.guard(() => this.inner.get(digest));
  }

  async materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    try {
      return await this.inner.materialize(digest, dest, executable);
    } catch (err) {
      throw asDiskFull(err, "an input root", dirname(dest), digest.sizeBytes);
    }
  }

  sizeBytes(): number {
    return this.inner.sizeBytes();
  }

  close(): void {
    try {
      this.inner.close();
    } catch (err) {
      // What close writes (last-access times) only orders eviction: a full disk loses that, not a blob.
      if (asDiskFull(err, "the blob store", this.dir) === err) throw err;
    }
  }

  private async guard<T>(f: () => Promise<T>, needBytes?: number): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw asDiskFull(err, "the blob store", this.dir, needBytes);
    }
  }
}
