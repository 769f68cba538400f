// Derives a Merkle tree without some of its files (a compile's input root without the build's objects and archives),
// re-hashing only the directories that lose a file and storing their new Directory blobs.
import type { BlobStore } from "../cas/index.js";
import { CorruptBlobError, digestKey, digestOf, type Digest } from "../core/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { readDirectory } from "./tree.js";

/** Past this many remembered directories the memo starts afresh (a long-lived head sees many contexts). */
const MAX_MEMO = 100_000;

/**
 * Directory digest → the digest of that directory with the dropped files left out. A Directory blob never changes, so
 * neither does its pruned form: one memo serves every tree pruned with the same `drop`, and a new context (a host step
 * changed a few files) costs only the directories on the paths to what changed.
 */
export type PruneMemo = Map<string, Digest>;

/**
 * The digest of `root` with every file whose name `drop` accepts left out, at any depth. Directories stay (even when
 * they end up empty: a working directory must still exist), symlinks stay, and a subtree that drops nothing keeps its
 * digest, so only the directories that lose a file, and their parents, get new Directory blobs (stored in `store`).
 */
export async function pruneTree(store: BlobStore, root: Digest, drop: (name: string) => boolean, memo: PruneMemo = new Map()): Promise<Digest> {
  if (memo.size > MAX_MEMO) memo.clear();
  const prune = async (digest: Digest, path: string): Promise<Digest> => {
    const key = digestKey(digest);
    const known = memo.get(key);
    if (known) return known;
    const dir = await readDirectory(store, digest);
    const files = dir.files.filter((f) => !drop(f.name));
    const directories = await Promise.all(
      dir.directories.map(async (d) => {
        if (!d.digest) throw new CorruptBlobError(`directory ${path}/${d.name} has no digest`);
        return { name: d.name, digest: await prune(d.digest, `${path}/${d.name}`) };
      }),
    );
    let result = digest;
    if (files.length !== dir.files.length || directories.some((d, i) => d.digest.hash !== dir.directories[i]!.digest!.hash)) {
      const encoded = Directory.encode({ ...dir, files, directories }).finish();
      result = digestOf(encoded);
      if (!(await store.has(result))) await store.put(encoded, result);
    }
    memo.set(key, result);
    return result;
  };
  return prune(root, "");
}
