// Sends blobs again that the head's store lost (rot it found and dropped): each one the client's hashed tree
// names, or that this build wrote into the tree as an action's output, is read from the project tree and
// uploaded, verified against its digest.
import { join } from "node:path";
import { type Digest, type Logger, digestKey, errorMessage } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { HashedTree } from "../merkle/index.js";

/** How long a lost blob that is no source is waited for among this build's outputs (the head waits 10 s in all). */
const OUTPUT_WAIT_MS = 5_000;

/** The build's outputs written into the tree so far (OutputWriter): where a lost build output can be read again. */
export interface WrittenOutputs {
  writtenOutputs(keys: readonly string[], timeoutMs: number): Promise<Map<string, { dest: string; digest: Digest }>>;
}

/**
 * Uploads what it can of `keys` (digestKey strings) from `tree` under `root`, then from `outputs` (a build output,
 * e.g. an object a later link needs, is in no hashed tree); a file changed since it was hashed or written is skipped.
 */
export async function reuploadBlobs(
  store: BlobStore,
  root: string,
  tree: HashedTree,
  keys: readonly string[],
  log: Logger,
  outputs?: WrittenOutputs,
): Promise<number> {
  const wanted = new Set(keys);
  const files = new Map<string, { file: string; digest: Digest; output: boolean }>();
  for (const [path, f] of tree.files) {
    const k = digestKey(f.digest);
    if (wanted.has(k) && !files.has(k)) files.set(k, { file: join(root, path), digest: f.digest, output: false });
  }
  const notSources = keys.filter((k) => !files.has(k));
  if (notSources.length && outputs) {
    const written = await outputs.writtenOutputs(notSources, OUTPUT_WAIT_MS).catch(() => new Map<string, { dest: string; digest: Digest }>());
    for (const [k, w] of written) files.set(k, { file: w.dest, digest: w.digest, output: true });
  }
  let sent = 0;
  await Promise.all(
    [...files].map(async ([key, f]) => {
      try {
        // Verified as it is read: bytes edited since (the user's to edit) do not match and are not sent.
        await store.putFile(f.file, f.digest);
        sent++;
        if (f.output) log.warn({ path: f.file, digest: key }, "re-sent a build output the head lost");
      } catch (err) {
        log.warn({ path: f.file, digest: key, err: errorMessage(err) }, "could not upload a lost blob again");
      }
    }),
  );
  log.warn({ asked: keys.length, sent }, "the head lost blobs of this build; uploaded them again");
  return sent;
}
