// The build's source context: the project tree hashed (through the stat cache) and, unless asked not to, uploaded to the head's store.
import { errorMessage, ExitCode, isDiskFull, OrionError } from "../core/index.js";
import { type HashedTree, hashTree, uploadTree } from "../merkle/index.js";
import type { ContextUpload } from "../head/api.js";
import type { ClientBuildOptions } from "./build-options.js";

/** `known`: the blobs this build saw the head's store hold, so a re-hash after a host step uploads only what changed. */
export async function hashContext(
  root: string,
  o: Pick<ClientBuildOptions, "store" | "statCache" | "inProcess">,
  known: Set<string>,
  upload = true,
): Promise<{ upload: ContextUpload; tree: HashedTree }> {
  let tree: HashedTree;
  try {
    tree = await hashTree(root, { statCache: o.statCache });
  } catch (err) {
    if (err instanceof OrionError || isDiskFull(err)) throw err;
    throw new OrionError(`cannot hash ${root}: ${errorMessage(err)}`, { exitCode: ExitCode.USAGE, cause: err });
  }
  // Over the wire, more blobs in flight means fuller batches (one call each), not more calls.
  if (upload) await uploadTree(o.store, tree, root, { concurrency: o.inProcess ? 16 : 64, known });
  return { upload: { root: tree.root, files: o.inProcess ? tree.files : undefined }, tree };
}
