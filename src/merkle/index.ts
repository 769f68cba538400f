// Merkle trees and the stat cache behind them: the source context's public surface.
export { StatCache, type StatCacheOptions } from "./stat-cache.js";
export { placeOutput } from "./place-output.js";
export {
  buildTree,
  hashTree,
  loadTree,
  MISSING_FROM_STORE,
  uploadTree,
  ChangedWhileHashedError,
  type BuildTreeExtras,
  type DirectoryCache,
  type HashTreeOptions,
  type HashedTree,
  type LoadedTree,
  type MerkleTree,
  type TreeEntry,
} from "./tree.js";
export { pruneTree, type PruneMemo } from "./tree-prune.js";
export { DirListings, type DirState, type ProbeSession } from "./dir-listing.js";
export { extractTreeTar, packTreeTar, TAR_MAX_FILE_BYTES, type TarExtractOptions, type TarExtractStats } from "./tree-tar.js";
