// What the step cache asks of a project tree — what a path is, a file's content, a link's target, a directory's
// entries — behind one small interface, and its first implementation: the tree hashed up front (the client's host-step
// loop hashes it anyway). The live file system is the other (tree-view-live.ts). Both answer alike for the same tree,
// so a fingerprint taken through one matches one taken through the other.
import type { TreeEntry } from "../merkle/index.js";

/** A path's type in the tree: a regular file, a symlink, a directory. */
export type EntryType = "f" | "l" | "d";

/**
 * A project tree seen as the tree hasher (src/merkle hashTree) sees it: symlinks never followed, nothing named `.git`
 * (at any depth), no sockets, FIFOs or devices. Paths are root-relative, "/"-separated; "" is the root.
 */
export interface TreeView {
  readonly root: string;
  /** undefined when nothing of the tree is at `rel` (also for a path reached through a symlinked directory). */
  type(rel: string): EntryType | undefined;
  /** The content of the regular file at `rel`; undefined when there is none. */
  file(rel: string): Promise<TreeEntry | undefined>;
  /** The target of the symlink at `rel`, exactly as read; undefined when there is none. */
  symlink(rel: string): string | undefined;
  /** The entries' names of the directory at `rel`, sorted (JavaScript order); undefined when there is none. */
  listing(rel: string): readonly string[] | undefined;
  /** Told, after a step ran, what a file it changed in place held when it started (a view that may not know it). */
  learnStart?(rel: string, entry: TreeEntry): void;
}

/** The project's files as hashed now (the client loop's tree). */
export interface TreeState {
  root: string;
  files: ReadonlyMap<string, TreeEntry>;
  symlinks: ReadonlyMap<string, string>;
  /** Every directory of the tree, root-relative ("" = the root). */
  directories: readonly string[];
}

/**
 * Thrown by a view that cannot tell what a path held (a file the step changed while it ran, which the view never saw
 * before): the step is then not stored, since its inputs cannot be fingerprinted as they were.
 */
export class StateUnknownError extends Error {
  constructor(readonly rel: string, why: string) {
    super(`${rel} ${why}`);
    this.name = "StateUnknownError";
  }
}

/** A hashed tree as a view: answers from its maps, listings built on first use. */
export function hashedTreeView(tree: TreeState): TreeView {
  let dirs: Set<string> | undefined;
  let listings: Map<string, string[]> | undefined;
  return {
    root: tree.root,
    type(rel) {
      if (tree.files.has(rel)) return "f";
      if (tree.symlinks.has(rel)) return "l";
      return (dirs ??= new Set(tree.directories)).has(rel) ? "d" : undefined;
    },
    file: (rel) => Promise.resolve(tree.files.get(rel)),
    symlink: (rel) => tree.symlinks.get(rel),
    listing(rel) {
      listings ??= listingsOf([tree.files.keys(), tree.symlinks.keys(), tree.directories]);
      return listings.get(rel) ?? ((dirs ??= new Set(tree.directories)).has(rel) ? [] : undefined);
    },
  };
}

/** Each directory's sorted entry names, from every path of a tree. */
function listingsOf(groups: Iterable<string>[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const paths of groups) {
    for (const p of paths) {
      if (p === "") continue;
      const slash = p.lastIndexOf("/");
      const parent = slash < 0 ? "" : p.slice(0, slash);
      const list = m.get(parent);
      if (list) list.push(p.slice(slash + 1));
      else m.set(parent, [p.slice(slash + 1)]);
    }
  }
  for (const list of m.values()) list.sort();
  return m;
}
