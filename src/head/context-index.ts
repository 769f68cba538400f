// A source context (one Merkle tree of the project) indexed for the head's key look-ups: path → digest, with no I/O.
import { posix } from "node:path";
import type { Digest } from "../core/index.js";

export interface ContextEntry {
  digest: Digest;
  executable: boolean;
}

export class ContextIndex {
  /** Blob hash → size of each distinct file blob, made on first use (placement asks; key look-ups never do). */
  private blobs?: Map<string, number>;
  /** Other context's root hash → bytes shared with it (contexts never change, so neither does this). */
  private readonly shared = new Map<string, number>();
  /** The compile input root (this tree without objects and archives), made once on first use; undefined until then. */
  private compile?: Promise<Digest>;
  /** The compile input root once made: placement names this context by either root, and idle nodes warm it up. */
  compileRootDigest?: Digest;

  constructor(
    readonly root: Digest,
    /** Tree-relative path → file. */
    readonly files: ReadonlyMap<string, ContextEntry>,
  ) {}

  get compileRootHash(): string | undefined {
    return this.compileRootDigest?.hash;
  }

  file(path: string): ContextEntry | undefined {
    return this.files.get(path);
  }

  /** The compile input root, derived by `make` the first time it is asked for (a failure is not remembered). */
  compileRoot(make: () => Promise<Digest>): Promise<Digest> {
    if (!this.compile) {
      const p = make();
      this.compile = p;
      p.then(
        (d) => (this.compileRootDigest = d),
        () => {
          if (this.compile === p) this.compile = undefined;
        },
      );
    }
    return this.compile;
  }

  /** Bytes of this context's distinct blobs that `other` holds too: what a node holding `other` need not fetch. */
  bytesSharedWith(other: ContextIndex): number {
    let n = this.shared.get(other.root.hash);
    if (n === undefined) {
      n = 0;
      const theirs = other.blobSizes();
      for (const [hash, size] of this.blobSizes()) if (theirs.has(hash)) n += size;
      this.shared.set(other.root.hash, n);
    }
    return n;
  }

  private blobSizes(): Map<string, number> {
    if (!this.blobs) {
      this.blobs = new Map();
      for (const f of this.files.values()) this.blobs.set(f.digest.hash, f.digest.sizeBytes);
    }
    return this.blobs;
  }
}

/** Joins a cwd-relative path onto a tree-relative cwd; undefined when it leaves the tree (or is absolute outside `projectRoot`). */
export function toTreePath(projectRoot: string, cwd: string, p: string): string | undefined {
  let rel: string;
  if (posix.isAbsolute(p)) {
    if (p !== projectRoot && !p.startsWith(projectRoot + "/")) return undefined;
    rel = posix.relative(projectRoot, p);
  } else {
    rel = posix.normalize(posix.join(cwd || ".", p));
  }
  if (rel === "." ) return "";
  if (rel.startsWith("../") || rel === "..") return undefined;
  return rel;
}
