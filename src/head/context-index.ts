// A source context (one Merkle tree of the project) indexed for the head's key look-ups: path → digest, dir → names, with no I/O.
import { posix } from "node:path";
import type { Digest } from "../core/index.js";

export interface ContextEntry {
  digest: Digest;
  executable: boolean;
}

export class ContextIndex {
  private listings?: Map<string, string[]>;

  constructor(
    readonly root: Digest,
    /** Tree-relative path → file. */
    readonly files: ReadonlyMap<string, ContextEntry>,
  ) {}

  file(path: string): ContextEntry | undefined {
    return this.files.get(path);
  }

  /** The sorted names directly inside `dir` ("" = the root); undefined when the tree has no such directory. */
  listDir(dir: string): string[] | undefined {
    if (!this.listings) {
      const sets = new Map<string, Set<string>>();
      for (const path of this.files.keys()) {
        let child = path;
        let parent = posix.dirname(path);
        for (;;) {
          const key = parent === "." ? "" : parent;
          let set = sets.get(key);
          if (!set) sets.set(key, (set = new Set()));
          const had = set.has(posix.basename(child));
          set.add(posix.basename(child));
          if (had || key === "") break;
          child = key;
          parent = posix.dirname(key);
        }
      }
      this.listings = new Map([...sets].map(([k, v]) => [k, [...v].sort()]));
    }
    return this.listings.get(dir === "." ? "" : dir);
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
