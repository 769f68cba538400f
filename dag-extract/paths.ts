// Converts paths as a command wrote them (relative to its cwd) into the graph's root-relative form.

import path from "node:path";

/**
 * Resolves `p` (as written in argv, relative to `cwd`, itself relative to `root`) to a
 * normalized root-relative path; a path that leaves the root stays absolute, so it can
 * never be mistaken for a file of the tree.
 */
export function rootRelative(root: string, cwd: string, p: string): string {
  const abs = path.resolve(root, cwd, p);
  const rel = path.relative(root, abs);
  if (rel === "") return ".";
  if (rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return abs;
  return rel;
}

/** The cwd form of GraphCommand: "" for the root itself, absolute outside it. */
export function rootRelativeDir(root: string, dir: string): string {
  const rel = rootRelative(root, "", dir);
  return rel === "." ? "" : rel;
}
