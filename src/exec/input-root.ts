// Turns a Merkle input root held in the BlobStore into a real directory of hard links, refusing any entry that would escape it.
import * as fsp from "node:fs/promises";
import { join, posix } from "node:path";
import type { BlobStore } from "../cas/blob-store.js";
import { EMPTY_DIGEST, ExitCode, OrionError, Status, digestKey, type Digest } from "../core/index.js";
import { type DirectoryCache, loadTree, MISSING_FROM_STORE } from "../merkle/index.js";

/** A flattened input root; every path is relative to the root and uses "/". */
export interface InputTree {
  /** Directories, parents before children ("" is the root itself and is not listed). */
  dirs: string[];
  files: { path: string; digest: Digest; executable: boolean }[];
  symlinks: { path: string; target: string }[];
}

/** How many blobs are linked at once: enough to hide file-system latency, few enough not to exhaust descriptors. */
export const MATERIALIZE_CONCURRENCY = 64;
/** Symlink hops allowed while checking one link, as the kernel's ELOOP limit. */
const MAX_SYMLINK_HOPS = 40;

/** A request that would break out of its sandbox: not the machine's fault, so never retried elsewhere. */
export function sandboxViolation(message: string): OrionError {
  return new OrionError(message, { exitCode: ExitCode.BUILD_FAILED, code: Status.PERMISSION_DENIED });
}

/**
 * An input root's tree as a node materializes it, read with the one Merkle loader (merkle's loadTree: names checked,
 * a missing Directory is NOT_FOUND and says MISSING_FROM_STORE). `cache` keeps Directory messages across roots.
 */
export async function loadInputTree(store: BlobStore, root: Digest, options: { cache?: DirectoryCache } = {}): Promise<InputTree> {
  const loaded = await loadTree(store, root, options);
  const tree: InputTree = {
    // Breadth-first: parents before children.
    dirs: [...loaded.dirDigests.keys()].filter((p) => p !== ""),
    files: [...loaded.files].map(([path, f]) => ({ path, digest: f.digest, executable: f.executable })),
    symlinks: [...loaded.symlinks].map(([path, target]) => ({ path, target })),
  };
  // A symlink that leaves the root (or loops) is left out, never followed: the action sees a
  // missing file there, as it would on a machine without that target, and the sandbox stays whole.
  const escaping = new Set(escapingSymlinks(tree));
  if (escaping.size) tree.symlinks = tree.symlinks.filter((s) => !escaping.has(s.path));
  return tree;
}

/**
 * Refuses any symlink that resolves outside the root. The check follows the tree's own symlinks while
 * resolving, because a purely lexical test is fooled by `a/up -> ..` followed by `b -> a/up/..`.
 */
export function checkSymlinks(tree: Pick<InputTree, "symlinks">): void {
  const bad = escapingSymlinks(tree)[0];
  if (bad !== undefined) {
    const target = tree.symlinks.find((s) => s.path === bad)!.target;
    throw sandboxViolation(`symlink ${bad} -> ${target} escapes the input root`);
  }
}

/** The paths of the symlinks that resolve outside the root or loop. */
export function escapingSymlinks(tree: Pick<InputTree, "symlinks">): string[] {
  const links = new Map(tree.symlinks.map((s) => [s.path, s.target]));
  return tree.symlinks.filter(({ path, target }) => !staysInside(path, target, links)).map((s) => s.path);
}

function staysInside(linkPath: string, target: string, links: Map<string, string>): boolean {
  if (target === "" || posix.isAbsolute(target)) return false;
  const stack = posix.dirname(linkPath).split("/").filter((c) => c !== "" && c !== ".");
  const pending = target.split("/");
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (stack.length === 0) return false;
      stack.pop();
      continue;
    }
    stack.push(c);
    const via = links.get(stack.join("/"));
    if (via === undefined) continue;
    if (++hops > MAX_SYMLINK_HOPS || posix.isAbsolute(via)) return false;
    stack.pop();
    pending.unshift(...via.split("/"));
  }
  return true;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; the first failure rejects once all started calls settle. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

/**
 * Writes `tree` under `dest` (which must not exist yet): directories, blobs as hard links from the
 * store, symlinks. With `readOnly`, directories end up 0555 so a stray write into a shared context fails.
 */
export async function materializeTree(
  store: BlobStore,
  tree: InputTree,
  dest: string,
  options: { readOnly: boolean; reuse?: MaterializedTree },
): Promise<void> {
  await fsp.mkdir(dest, { recursive: true });
  for (const d of tree.dirs) await fsp.mkdir(join(dest, d), { recursive: true });
  await placeFiles(store, tree.files, dest, options.reuse);
  for (const s of tree.symlinks) await fsp.symlink(s.target, join(dest, s.path));
  if (options.readOnly) {
    for (const d of [...tree.dirs].reverse()) await fsp.chmod(join(dest, d), 0o555);
    await fsp.chmod(dest, 0o555);
  }
}

/** Links `files` under `dest` from the store (or from `reuse` when unchanged there); every input the store lacks is named at once. */
async function placeFiles(store: BlobStore, files: InputTree["files"], dest: string, reuse?: MaterializedTree): Promise<void> {
  /** Inputs the store lacks (or held rotten and dropped): all named at once, so the head can have them all sent again. */
  const missing: { path: string; digest: Digest }[] = [];
  await forEachLimit(files, MATERIALIZE_CONCURRENCY, async (f) => {
    const path = join(dest, f.path);
    // A file unchanged since an earlier context: one link(2) from there, no store round trip.
    if (reuse?.files.get(f.path) === fileKey(f)) {
      try {
        await fsp.link(join(reuse.dir, f.path), path);
        return;
      } catch {
        // The earlier context is gone or damaged: fall through to the store.
      }
    }
    if (f.digest.sizeBytes === 0 && f.digest.hash === EMPTY_DIGEST.hash) {
      // REAPI treats the empty blob as always present; clients need not upload it.
      await fsp.writeFile(path, "", { mode: f.executable ? 0o555 : 0o444, flag: "wx" });
      return;
    }
    if (!(await store.materialize(f.digest, path, f.executable))) missing.push(f);
  });
  if (missing.length) {
    const more = missing.length > 1 ? ` and ${missing.length - 1} more` : "";
    throw new OrionError(`input ${missing[0]!.path} (${digestKey(missing[0]!.digest)})${more} ${MISSING_FROM_STORE}`, {
      code: Status.FAILED_PRECONDITION,
    });
  }
}

/**
 * Turns `dest`, a read-only materialization of `from` (as `materializeTree` leaves it), into one of `to` by their
 * differences alone: what changed or went is removed, what changed or came is linked from the store, and only the
 * folders touched are made writable for it and read-only again. Returns the files it linked. A failure leaves `dest`
 * half-patched: the caller removes it.
 */
export async function patchTree(store: BlobStore, from: InputTree, to: InputTree, dest: string): Promise<string[]> {
  const oldFiles = new Map(from.files.map((f) => [f.path, fileKey(f)]));
  const oldLinks = new Map(from.symlinks.map((l) => [l.path, l.target]));
  const oldDirs = new Set(from.dirs);
  const newFiles = new Map(to.files.map((f) => [f.path, fileKey(f)]));
  const newLinks = new Map(to.symlinks.map((l) => [l.path, l.target]));
  const newDirs = new Set(to.dirs);
  const parent = (p: string) => {
    const d = posix.dirname(p);
    return d === "." ? "" : d;
  };
  const goneDirs = from.dirs.filter((d) => !newDirs.has(d));
  const goneDirSet = new Set(goneDirs);
  const underGone = (p: string) => {
    for (let d = parent(p); d !== ""; d = parent(d)) if (goneDirSet.has(d)) return true;
    return false;
  };
  const goneLeaves = [
    ...from.files.filter((f) => newFiles.get(f.path) !== oldFiles.get(f.path)).map((f) => f.path),
    ...from.symlinks.filter((l) => newLinks.get(l.path) !== l.target).map((l) => l.path),
  ];
  const cameDirs = to.dirs.filter((d) => !oldDirs.has(d));
  const cameFiles = to.files.filter((f) => oldFiles.get(f.path) !== newFiles.get(f.path));
  const cameLinks = to.symlinks.filter((l) => oldLinks.get(l.path) !== l.target);
  // Folders of both trees whose entries change: writable while they do.
  const touched = new Set<string>();
  for (const p of [...goneDirs, ...goneLeaves, ...cameDirs, ...cameFiles.map((f) => f.path), ...cameLinks.map((l) => l.path)]) {
    const d = parent(p);
    if ((d === "" || (oldDirs.has(d) && newDirs.has(d))) && !goneDirSet.has(d)) touched.add(d);
  }
  const byDepth = (a: string, b: string) => b.split("/").length - a.split("/").length;
  const touchedList = [...touched].sort(byDepth);
  for (const d of touchedList) await fsp.chmod(join(dest, d), 0o755);
  for (const d of goneDirs) if (!underGone(d)) await removeTree(join(dest, d));
  for (const p of goneLeaves) if (!underGone(p)) await fsp.rm(join(dest, p), { force: true });
  for (const d of cameDirs) await fsp.mkdir(join(dest, d), { recursive: true });
  await placeFiles(store, cameFiles, dest);
  for (const l of cameLinks) await fsp.symlink(l.target, join(dest, l.path));
  for (const d of [...cameDirs].reverse()) await fsp.chmod(join(dest, d), 0o555);
  for (const d of touchedList) await fsp.chmod(join(dest, d), 0o555);
  return cameFiles.map((f) => f.path);
}

/** A context already on disk, for reuse by the next one: its folder and path → fileKey of each file. */
export interface MaterializedTree {
  dir: string;
  files: Map<string, string>;
}

export function fileKey(f: { digest: Digest; executable: boolean }): string {
  return `${digestKey(f.digest)}${f.executable ? "+x" : ""}`;
}

/** rm -rf that also copes with the read-only directories `materializeTree` leaves (non-root users cannot unlink inside them). */
export async function removeTree(path: string): Promise<void> {
  try {
    await fsp.rm(path, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw err;
    await makeWritable(path);
    await fsp.rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await fsp.chmod(path, 0o755);
  for (const name of await fsp.readdir(path)) await makeWritable(join(path, name));
}
