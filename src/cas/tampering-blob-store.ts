// A store gone bad, for tests: it hands out the bytes of the blobs it is told to with one byte flipped.
import type { Digest } from "../core/index.js";
import type { BlobStore, FindMissingOptions } from "./blob-store.js";

export class TamperingBlobStore implements BlobStore {
  constructor(
    private readonly inner: BlobStore,
    /** Which blobs come out damaged; all of them when absent. */
    private readonly damaged: (d: Digest) => boolean = () => true,
  ) {}

  findMissing = (d: readonly Digest[], o?: FindMissingOptions) => this.inner.findMissing(d, o);
  has = (d: Digest) => this.inner.has(d);
  put = (data: Uint8Array, e?: Digest) => this.inner.put(data, e);
  putFile = (p: string, e?: Digest) => this.inner.putFile(p, e);
  adoptFile = (p: string) => this.inner.adoptFile(p);
  copyOut = (d: Digest, dest: string, x: boolean) => this.inner.copyOut(d, dest, x);
  materialize = (d: Digest, dest: string, x: boolean) => this.inner.materialize(d, dest, x);
  sizeBytes = () => this.inner.sizeBytes();
  close = () => this.inner.close();

  async get(d: Digest): Promise<Buffer | undefined> {
    const b = await this.inner.get(d);
    if (b && b.length && this.damaged(d)) b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    return b;
  }
}
