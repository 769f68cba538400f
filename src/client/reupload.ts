// Sends blobs again that the head's store lost (rot it found and dropped): each one the client's
// hashed tree names is read from the project tree and uploaded, verified against its digest.
import { join } from "node:path";
import { type Logger, digestKey, errorMessage } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { HashedTree } from "../merkle/index.js";

/** Uploads what it can of `keys` (digestKey strings) from `tree` under `root`; a file changed since it was hashed is skipped. */
export async function reuploadBlobs(store: BlobStore, root: string, tree: HashedTree, keys: readonly string[], log: Logger): Promise<number> {
  const wanted = new Set(keys);
  const paths = new Map<string, string>();
  for (const [path, f] of tree.files) {
    const k = digestKey(f.digest);
    if (wanted.has(k) && !paths.has(k)) paths.set(k, path);
  }
  let sent = 0;
  await Promise.all(
    [...paths].map(async ([key, path]) => {
      try {
        await store.putFile(join(root, path), tree.files.get(path)!.digest);
        sent++;
      } catch (err) {
        log.warn({ path, digest: key, err: errorMessage(err) }, "could not upload a lost blob again");
      }
    }),
  );
  log.warn({ asked: keys.length, sent }, "the head lost blobs of this build; uploaded them again");
  return sent;
}
