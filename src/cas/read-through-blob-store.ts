// A local store in front of a remote one: reads fall through to the remote on a miss (the remote
// verifies what it returns; the local store verifies again as it stores), writes stay local.
import type { Digest } from "../core/index.js";
import type { BlobStore, FindMissingOptions } from "./blob-store.js";

export class ReadThroughBlobStore implements BlobStore {
  /** Fetches in flight, by hash: concurrent readers of one blob share one transfer. */
  private readonly fetching = new Map<string, Promise<boolean>>();
  /** Blobs and bytes fetched from the remote and kept (for logs). */
  readonly fetched = { blobs: 0, bytes: 0 };

  constructor(
    private readonly local: BlobStore,
    private readonly remote: BlobStore,
  ) {}

  async findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    const notHere = await this.local.findMissing(digests, options);
    return notHere.length ? this.remote.findMissing(notHere) : [];
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.local.has(digest)) || this.remote.has(digest);
  }

  put(data: Uint8Array, expected?: Digest): Promise<Digest> {
    return this.local.put(data, expected);
  }

  putFile(path: string, expected?: Digest): Promise<Digest> {
    return this.local.putFile(path, expected);
  }

  adoptFile(path: string): Promise<Digest> {
    return this.local.adoptFile(path);
  }

  async copyOut(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    if (await this.local.copyOut(digest, dest, executable)) return true;
    return (await this.fetch(digest)) && this.local.copyOut(digest, dest, executable);
  }

  async get(digest: Digest): Promise<Buffer | undefined> {
    const here = await this.local.get(digest);
    if (here) return here;
    return (await this.fetch(digest)) ? this.local.get(digest) : undefined;
  }

  async materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    if (await this.local.materialize(digest, dest, executable)) return true;
    return (await this.fetch(digest)) && this.local.materialize(digest, dest, executable);
  }

  sizeBytes(): number {
    return this.local.sizeBytes();
  }

  /** Closes the local store; the remote belongs to whoever connected it. */
  close(): void {
    this.local.close();
  }

  private fetch(digest: Digest): Promise<boolean> {
    let p = this.fetching.get(digest.hash);
    if (!p) {
      p = (async () => {
        const data = await this.remote.get(digest);
        if (!data) return false;
        await this.local.put(data, digest);
        this.fetched.blobs++;
        this.fetched.bytes += data.length;
        return true;
      })().finally(() => this.fetching.delete(digest.hash));
      this.fetching.set(digest.hash, p);
    }
    return p;
  }
}
