// The input chain's head-tar stage (input-chain.ts): when the node holds (almost) none of a tree's bytes, it
// asks its head for the whole tree as one tar stream instead of one read per blob, and extracts it into its
// own store — each file checked against its digest, escaping entries refused.
import type { BlobStore } from "../cas/index.js";
import { type Digest, type Logger, digestKey, errorMessage } from "../core/index.js";
import type { InputTree } from "../exec/index.js";
import { extractTreeTar } from "../merkle/index.js";

/** Where a tree's tar stream comes from (the head's Blobs service). */
export interface TreeTarSource {
  readTreeTar(root: Digest): AsyncIterable<Uint8Array>;
}

export interface TarProvisionerOptions {
  /** The node's own store (not the read-through one): what it lacks decides, and what arrives goes there. */
  local: BlobStore;
  source: TreeTarSource;
  /** Take the tar path when the node lacks at least this share of the tree's bytes (default 0.9)… */
  minMissingShare?: number;
  /** …and at least this many of its blobs (default 8): below that, a few reads cost less than a stream. */
  minMissingBlobs?: number;
}

/** What the tar path has done in this process (for logs and tests). */
export interface TarProvisionStats {
  streams: number;
  files: number;
  bytes: number;
  failures: number;
}

interface TarThresholds {
  minMissingShare?: number;
  minMissingBlobs?: number;
}

/** Whether lacking `missing` of a tree's `totalBytes` is enough to fetch the whole tree as one tar stream. */
export function worthATarStream(missing: readonly Digest[], totalBytes: number, o: TarThresholds = {}): boolean {
  const missingBytes = missing.reduce((n, d) => n + d.sizeBytes, 0);
  return missing.length >= (o.minMissingBlobs ?? 8) && missingBytes >= (o.minMissingShare ?? 0.9) * totalBytes;
}

/** The distinct blobs of `tree` that `store` lacks, and the bytes of all its distinct blobs. */
/** What a store lacks of a tree (missingBlobs' answer): a stage given it need not ask the store again. */
export interface Lacking {
  missing: Digest[];
  totalBytes: number;
}

export async function missingBlobs(store: BlobStore, tree: InputTree): Promise<Lacking> {
  const blobs = new Map<string, Digest>();
  let totalBytes = 0;
  for (const f of tree.files) {
    if (f.digest.sizeBytes === 0) continue;
    const key = digestKey(f.digest);
    if (blobs.has(key)) continue;
    blobs.set(key, f.digest);
    totalBytes += f.digest.sizeBytes;
  }
  return { missing: await store.findMissing([...blobs.values()]), totalBytes };
}

export class TarProvisioner {
  readonly stats: TarProvisionStats = { streams: 0, files: 0, bytes: 0, failures: 0 };

  constructor(private readonly o: TarProvisionerOptions) {}

  async provision(root: Digest, tree: InputTree, log: Logger, lacking?: Lacking): Promise<void> {
    const { missing, totalBytes } = lacking ?? (await missingBlobs(this.o.local, tree));
    if (!worthATarStream(missing, totalBytes, this.o)) return;
    const started = performance.now();
    try {
      const r = await extractTreeTar(this.o.source.readTreeTar(root), { files: new Map(tree.files.map((f) => [f.path, f])), store: this.o.local });
      this.stats.streams++;
      this.stats.files += r.files;
      this.stats.bytes += r.bytes;
      log.info(
        { root: root.hash, files: r.files, links: r.links, bytes: r.bytes, missing: missing.length, ms: Math.round(performance.now() - started) },
        "context provisioned from one tar stream",
      );
    } catch (err) {
      // Whatever did not arrive is fetched blob by blob; a refused entry was not stored.
      this.stats.failures++;
      log.warn({ root: root.hash, err: errorMessage(err) }, "tar provisioning failed; fetching the context's blobs one by one");
    }
  }
}
