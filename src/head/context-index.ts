// A source context (one Merkle tree of the project) indexed for the head's key look-ups: path → digest, with no I/O.
import { posix } from "node:path";
import type { Digest } from "../core/index.js";

export interface ContextEntry {
  digest: Digest;
  executable: boolean;
}

export class ContextIndex {
  constructor(
    readonly root: Digest,
    /** Tree-relative path → file. */
    readonly files: ReadonlyMap<string, ContextEntry>,
  ) {}

  file(path: string): ContextEntry | undefined {
    return this.files.get(path);
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
