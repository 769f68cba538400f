// Which node holds which blob, as far as the head saw it happen: the outputs each node reported. A node's
// materialized contexts are tracked apart (NodeRecord.contexts); this covers what compiles produced and
// links read, so a link's objects come from the nodes that compiled them (DESIGN.md, source context: P2P).
import type { Digest } from "../core/index.js";

export class BlobHolders {
  /** Blob hash → the nodes that reported it, oldest entry first (re-reporting moves it to the end). */
  private readonly byHash = new Map<string, string[]>();

  /** `limit` caps the blobs remembered; the oldest are forgotten first (a node's store evicts by age too). */
  constructor(private readonly limit = 200_000) {}

  add(nodeId: string, digests: Iterable<Digest>): void {
    for (const d of digests) {
      if (d.sizeBytes === 0) continue;
      const nodes = this.byHash.get(d.hash) ?? [];
      this.byHash.delete(d.hash);
      if (!nodes.includes(nodeId)) nodes.push(nodeId);
      this.byHash.set(d.hash, nodes);
    }
    for (const oldest of this.byHash.keys()) {
      if (this.byHash.size <= this.limit) break;
      this.byHash.delete(oldest);
    }
  }

  /** Bytes of `digests` (each distinct blob once) that `nodeId` reported holding. */
  bytesHeld(nodeId: string, digests: readonly Digest[]): number {
    let n = 0;
    const seen = new Set<string>();
    for (const d of digests) {
      if (seen.has(d.hash)) continue;
      seen.add(d.hash);
      if (this.byHash.get(d.hash)?.includes(nodeId)) n += d.sizeBytes;
    }
    return n;
  }

  get size(): number {
    return this.byHash.size;
  }
}
