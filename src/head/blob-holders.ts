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

  /** For each node holding some of `digests` (each distinct blob once), the bytes it holds: one pass over the digests. */
  bytesByNode(digests: readonly Digest[]): Map<string, number> {
    const out = new Map<string, number>();
    const seen = new Set<string>();
    for (const d of digests) {
      if (seen.has(d.hash)) continue;
      seen.add(d.hash);
      for (const node of this.byHash.get(d.hash) ?? []) out.set(node, (out.get(node) ?? 0) + d.sizeBytes);
    }
    return out;
  }

  /** Forgets what a node held (it left, was evicted, or restarted with a store that may be empty). */
  forget(nodeId: string): void {
    for (const [hash, nodes] of this.byHash) {
      const i = nodes.indexOf(nodeId);
      if (i < 0) continue;
      if (nodes.length === 1) this.byHash.delete(hash);
      else nodes.splice(i, 1);
    }
  }

  get size(): number {
    return this.byHash.size;
  }
}
