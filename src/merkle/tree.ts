// Merkle trees of REAPI `Directory` messages: built from a folder or a path map, uploaded to and loaded from a CAS.
import { lstatSync, type Dirent } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "../cas/index.js";
import {
  CorruptBlobError,
  DiskFullError,
  isDiskFull,
  OrionError,
  Status,
  UsageError,
  digestKey,
  EMPTY_DIGEST,
  digestOfMessage,
  errorMessage,
  type Digest,
} from "../core/index.js";
import { Directory, type DirectoryNode, type FileNode, type SymlinkNode } from "../gen/orion/v1/remote_execution.js";
import type { StatCache } from "./stat-cache.js";

export interface TreeEntry {
  digest: Digest;
  executable: boolean;
}

export interface MerkleTree {
  root: Digest;
  /** digestKey(d) → Directory message, for every directory of the tree (identical subtrees appear once). */
  directories: Map<string, Directory>;
  /** Relative directory path ("" = root) → its digest. */
  dirDigests: Map<string, Digest>;
}

export interface HashedTree extends MerkleTree {
  /** Relative path ("/"-separated, no leading "./") → file. */
  files: Map<string, TreeEntry>;
  /** Relative path → link target exactly as read. */
  symlinks: Map<string, string>;
}

export interface BuildTreeExtras {
  symlinks?: Iterable<[path: string, target: string]>;
  /** Directories to include even when they hold nothing (a path map alone cannot express an empty folder). */
  directories?: Iterable<string>;
}

export interface HashTreeOptions {
  statCache: StatCache;
  /** True to leave a path out; a directory left out is not walked. `.git` is always left out. */
  exclude?: (relPath: string, isDir: boolean) => boolean;
  /** Files hashed at once (default 64). */
  concurrency?: number;
  /**
   * An earlier hashing of the same folder with the same `exclude`: returned as it is when no file, symlink or folder
   * changed since, so a re-hash of an unchanged folder skips the Merkle construction (most of its CPU).
   */
  previous?: HashedTree;
}

/** REAPI sorts entries by name in byte order; JavaScript's `<` compares UTF-16 units, which differs above U+FFFF. */
function byName(a: { name: string }, b: { name: string }): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

function checkPath(path: string, what: string): string[] {
  const parts = path.split("/");
  if (path === "" || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new OrionError(`invalid ${what} path in a tree: ${JSON.stringify(path)}`, { code: Status.INVALID_ARGUMENT });
  }
  return parts;
}

interface DirBuild {
  files: FileNode[];
  symlinks: SymlinkNode[];
  subdirs: Set<string>;
}

/** The Merkle construction, from an in-memory map of relative paths; `hashTree` uses it too. */
export function buildTree(files: Iterable<[path: string, entry: TreeEntry]>, extras: BuildTreeExtras = {}): MerkleTree {
  const dirs = new Map<string, DirBuild>([["", { files: [], symlinks: [], subdirs: new Set() }]]);
  const leaves = new Set<string>();
  const ensureDir = (parts: string[]): DirBuild => {
    let path = "";
    let node = dirs.get("")!;
    for (const part of parts) {
      const child = path === "" ? part : `${path}/${part}`;
      if (leaves.has(child)) throw new OrionError(`tree path is both a file and a directory: ${child}`);
      node.subdirs.add(part);
      let next = dirs.get(child);
      if (!next) dirs.set(child, (next = { files: [], symlinks: [], subdirs: new Set() }));
      node = next;
      path = child;
    }
    return node;
  };
  const addLeaf = (path: string, what: string): [DirBuild, string] => {
    const parts = checkPath(path, what);
    const name = parts.pop()!;
    if (leaves.has(path) || dirs.has(path)) throw new OrionError(`tree path appears twice: ${path}`);
    const dir = ensureDir(parts);
    leaves.add(path);
    return [dir, name];
  };
  for (const [path, entry] of files) {
    const [dir, name] = addLeaf(path, "file");
    dir.files.push({ name, digest: entry.digest, isExecutable: entry.executable });
  }
  for (const [path, target] of extras.symlinks ?? []) {
    const [dir, name] = addLeaf(path, "symlink");
    dir.symlinks.push({ name, target });
  }
  for (const path of extras.directories ?? []) if (path !== "") ensureDir(checkPath(path, "directory"));

  // Children before parents: deepest paths first.
  const order = [...dirs.keys()].sort((a, b) => depth(b) - depth(a));
  const directories = new Map<string, Directory>();
  const dirDigests = new Map<string, Digest>();
  for (const path of order) {
    const d = dirs.get(path)!;
    const subdirs: DirectoryNode[] = [...d.subdirs].map((name) => ({
      name,
      digest: dirDigests.get(path === "" ? name : `${path}/${name}`)!,
    }));
    const message: Directory = {
      files: d.files.sort(byName),
      directories: subdirs.sort(byName),
      symlinks: d.symlinks.sort(byName),
    };
    const digest = digestOfMessage(Directory, message);
    directories.set(digestKey(digest), message);
    dirDigests.set(path, digest);
  }
  return { root: dirDigests.get("")!, directories, dirDigests };
}

function depth(path: string): number {
  if (path === "") return 0;
  let n = 1;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === "object" && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? "");
}

/** Hashes the folder `root` (symlinks recorded, never followed) into a Merkle tree. */
export async function hashTree(root: string, options: HashTreeOptions): Promise<HashedTree> {
  const exclude = options.exclude ?? (() => false);
  const fileList: string[] = [];
  const symlinks = new Map<string, string>();
  const dirList: string[] = [];

  // Walked paths are normalized already: a plain join (path.join's normalizing was a tenth of a re-hash's CPU).
  const base = root.endsWith("/") ? root : `${root}/`;
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : base + rel;
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(abs, { withFileTypes: true });
    } catch (err) {
      // A folder deleted while we walk is simply no longer part of the tree.
      if (rel !== "" && isErrno(err, "ENOENT")) return;
      throw new UsageError(`cannot read directory ${abs}: ${errorMessage(err)}`, err);
    }
    dirList.push(rel);
    const subdirs: Promise<void>[] = [];
    for (const e of entries) {
      if (e.name === ".git") continue;
      const childRel = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!exclude(childRel, true)) subdirs.push(walk(childRel));
      } else if (exclude(childRel, false)) {
        continue;
      } else if (e.isSymbolicLink()) {
        try {
          symlinks.set(childRel, await fsp.readlink(join(root, childRel)));
        } catch (err) {
          if (!isErrno(err, "ENOENT")) {
            throw new UsageError(`cannot read symlink ${join(root, childRel)}: ${errorMessage(err)}`, err);
          }
        }
      } else if (e.isFile()) {
        fileList.push(childRel);
      }
      // Sockets, FIFOs and devices have no content to hash (and reading a FIFO would block): they are left out.
    }
    await Promise.all(subdirs);
  };
  await walk("");

  const files = new Map<string, TreeEntry>();
  let next = 0;
  const worker = async () => {
    while (next < fileList.length) {
      const rel = fileList[next++]!;
      const abs = base + rel;
      try {
        // Sync on purpose: a stat served from the inode cache takes microseconds, while the promise version costs a
        // thread-pool round trip that made a no-change re-hash of 2,000 files 5x slower. So is the look-up of an
        // unchanged file's digest: only a file read is awaited.
        const st = lstatSync(abs, { bigint: true });
        if (!st.isFile()) continue; // replaced by something else since the walk
        const digest = options.statCache.known(abs, st) ?? (await options.statCache.digestOf(abs, st));
        files.set(rel, { digest, executable: (st.mode & 0o100n) !== 0n });
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue; // deleted since the walk
        throw new UsageError(`cannot read file ${abs}: ${errorMessage(err)}`, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 64, fileList.length) }, worker));
  options.statCache.flush();

  if (options.previous && sameEntries(options.previous, files, symlinks, dirList)) return options.previous;
  const tree = buildTree(files, { symlinks, directories: dirList });
  return { ...tree, files, symlinks };
}

/** Whether `prev` holds exactly these files (digest and executable bit), symlinks and folders. */
function sameEntries(prev: HashedTree, files: Map<string, TreeEntry>, symlinks: Map<string, string>, dirs: readonly string[]): boolean {
  // Every folder holding a file was walked, so the tree's folders are exactly the walked ones.
  if (prev.files.size !== files.size || prev.symlinks.size !== symlinks.size || prev.dirDigests.size !== dirs.length) return false;
  for (const [path, e] of files) {
    const was = prev.files.get(path);
    if (!was || was.executable !== e.executable || was.digest.hash !== e.digest.hash || was.digest.sizeBytes !== e.digest.sizeBytes) return false;
  }
  for (const [path, target] of symlinks) if (prev.symlinks.get(path) !== target) return false;
  return dirs.every((d) => prev.dirDigests.has(d));
}

export interface LoadedTree extends MerkleTree {
  files: Map<string, TreeEntry>;
  symlinks: Map<string, string>;
}

/**
 * Decoded Directory messages by digest key, kept by a caller that loads one tree after another (the head, a context
 * per host step): a Directory never changes, so a new tree costs reads only for the directories that changed.
 * Names are checked on every load, cached or not.
 */
export type DirectoryCache = Map<string, Directory>;
/** Past this many directories a cache starts afresh. */
const MAX_DIRECTORY_CACHE = 20_000;

/**
 * Reads a tree back from `store`. Names are checked, because a node materializes these paths: a name such as
 * ".." or "a/b" in a hostile or broken Directory must not escape the sandbox.
 */
export async function loadTree(store: BlobStore, root: Digest, options: { cache?: DirectoryCache } = {}): Promise<LoadedTree> {
  const directories = new Map<string, Directory>();
  const cache = options.cache;
  if (cache && cache.size > MAX_DIRECTORY_CACHE) cache.clear();
  const dirDigests = new Map<string, Digest>();
  const files = new Map<string, TreeEntry>();
  const symlinks = new Map<string, string>();

  const fetch = async (digest: Digest): Promise<Directory> => {
    const key = digestKey(digest);
    const known = directories.get(key) ?? cache?.get(key);
    if (known) {
      directories.set(key, known);
      return known;
    }
    const message = await readDirectory(store, digest);
    directories.set(key, message);
    cache?.set(key, message);
    return message;
  };
  const checkName = (name: string, parent: string): void => {
    if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new CorruptBlobError(`directory ${parent || "(root)"} holds an invalid name ${JSON.stringify(name)}`);
    }
  };

  let level: [string, Digest][] = [["", root]];
  while (level.length > 0) {
    const messages = await Promise.all(level.map(([, d]) => fetch(d)));
    const nextLevel: [string, Digest][] = [];
    level.forEach(([path, digest], i) => {
      dirDigests.set(path, digest);
      const dir = messages[i]!;
      const prefix = path === "" ? "" : `${path}/`;
      for (const f of dir.files) {
        checkName(f.name, path);
        if (!f.digest) throw new CorruptBlobError(`file ${prefix}${f.name} has no digest`);
        files.set(prefix + f.name, { digest: f.digest, executable: f.isExecutable });
      }
      for (const s of dir.symlinks) {
        checkName(s.name, path);
        symlinks.set(prefix + s.name, s.target);
      }
      for (const d of dir.directories) {
        checkName(d.name, path);
        if (!d.digest) throw new CorruptBlobError(`directory ${prefix}${d.name} has no digest`);
        nextLevel.push([prefix + d.name, d.digest]);
      }
    });
    level = nextLevel;
  }
  return { root, directories, dirDigests, files, symlinks };
}

/**
 * The words every "this blob is not in the store" failure of an action's inputs carries (a Directory here, a file in
 * exec/input-root.ts's materializeTree): the head reads them in a node's report as lost inputs (head/lost-inputs.ts).
 */
export const MISSING_FROM_STORE = "missing from the store";

/** One Directory blob from the store: NOT_FOUND when it is missing, a CorruptBlobError when it does not decode. */
export async function readDirectory(store: BlobStore, digest: Digest): Promise<Directory> {
  // An empty folder's Directory is the empty blob, which no store is asked to hold (uploads skip it, as REAPI's do): a
  // folder left empty by what a context leaves out (jemalloc's lib/, only archives) must not make the tree unreadable.
  if (digest.sizeBytes === 0 && digest.hash === EMPTY_DIGEST.hash) return Directory.create();
  const bytes = await store.get(digest);
  if (!bytes) throw new OrionError(`directory ${digestKey(digest)} is ${MISSING_FROM_STORE}`, { code: Status.NOT_FOUND });
  try {
    return Directory.decode(bytes);
  } catch (err) {
    throw new CorruptBlobError(`directory ${digestKey(digest)} does not decode: ${errorMessage(err)}`);
  }
}

/** A file of the tree was written while it was hashed and uploaded: the tree no longer describes it. */
export class ChangedWhileHashedError extends OrionError {
  constructor(
    abs: string,
    /** Its path in the tree. */
    readonly rel: string,
    cause: unknown,
  ) {
    super(`${abs} changed after it was hashed`, { cause });
    this.name = "ChangedWhileHashedError";
  }
}

/** Uploads the blobs of `tree` that `store` lacks; file bytes are read from `root`. */
export async function uploadTree(
  store: BlobStore,
  tree: HashedTree,
  root: string,
  options: {
    concurrency?: number;
    /** Digest keys the store is known to hold already (a build's earlier uploads); filled in as this one succeeds. */
    known?: Set<string>;
  } = {},
): Promise<{ uploadedBlobs: number; uploadedBytes: number }> {
  // One path per distinct file digest: identical files upload once.
  const fileByKey = new Map<string, [Digest, string]>();
  for (const [rel, entry] of tree.files) {
    const key = digestKey(entry.digest);
    if (!fileByKey.has(key)) fileByKey.set(key, [entry.digest, rel]);
  }
  const dirByKey = new Map<string, [Digest, Directory]>();
  for (const digest of tree.dirDigests.values()) {
    const key = digestKey(digest);
    const message = tree.directories.get(key);
    if (!message) throw new OrionError(`tree is missing its directory ${key}`);
    dirByKey.set(key, [digest, message]);
  }

  // A Directory's bytes can equal a file's (an empty folder and an empty file share a digest): ask once per digest.
  const wanted = new Map<string, Digest>();
  for (const [key, [d]] of [...fileByKey, ...dirByKey]) if (!options.known?.has(key)) wanted.set(key, d);
  const missing = wanted.size ? await store.findMissing([...wanted.values()]) : [];
  let uploadedBytes = 0;
  const missingBytes = missing.reduce((n, d) => n + d.sizeBytes, 0);
  const jobs = missing.map((digest) => async () => {
    const key = digestKey(digest);
    const dir = dirByKey.get(key);
    if (dir) {
      await store.put(Directory.encode(dir[1]).finish(), digest);
    } else {
      const abs = join(root, fileByKey.get(key)![1]);
      try {
        await store.putFile(abs, digest);
      } catch (err) {
        if (err instanceof CorruptBlobError) throw new ChangedWhileHashedError(abs, fileByKey.get(key)![1], err);
        // The store's disk, not this file: say how much of the upload is still to come.
        if (err instanceof DiskFullError) throw err.needing(missingBytes - uploadedBytes);
        if (err instanceof OrionError && isDiskFull(err)) throw err; // a remote store's full disk, in its own words
        throw new UsageError(`cannot read file ${abs}: ${errorMessage(err)}`, err);
      }
    }
    uploadedBytes += digest.sizeBytes;
  });
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, jobs.length) }, worker));
  if (options.known) for (const key of wanted.keys()) options.known.add(key);
  return { uploadedBlobs: missing.length, uploadedBytes };
}
