// Inputs the head's store lost (rot found as a node read them, and dropped): which blobs of an action's
// input root are gone, and a wait for its build's client to upload them again before the action re-runs.
import { type Clock, type Digest, EMPTY_DIGEST, digestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import { type DirectoryCache, loadTree, MISSING_FROM_STORE } from "../merkle/index.js";

/** How a node says an action's inputs were not all there (merkle's MISSING_FROM_STORE); anything else is another failure. */
export function isMissingInputs(error: string): boolean {
  return error.includes(MISSING_FROM_STORE);
}

/** The distinct file blobs under `root` that `store` does not hold; none when the tree itself cannot be read. */
export async function lostInputs(store: BlobStore, root: Digest, directories?: DirectoryCache): Promise<Digest[]> {
  let files: Iterable<{ digest: Digest }>;
  try {
    files = (await loadTree(store, root, { cache: directories })).files.values();
  } catch {
    return [];
  }
  const wanted = new Map<string, Digest>();
  for (const f of files) if (f.digest.hash !== EMPTY_DIGEST.hash) wanted.set(digestKey(f.digest), f.digest);
  return wanted.size ? store.findMissing([...wanted.values()]) : [];
}

/** Resolves true once `store` holds every one of `digests`, false after `timeoutMs` or when `over()` says stop. */
export async function waitForBlobs(
  store: BlobStore,
  digests: readonly Digest[],
  clock: Clock,
  timeoutMs: number,
  over: () => boolean = () => false,
): Promise<boolean> {
  const deadline = clock.now() + timeoutMs;
  let left = [...digests];
  for (;;) {
    left = await store.findMissing(left);
    if (left.length === 0) return true;
    if (over() || clock.now() >= deadline) return false;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 50));
  }
}
