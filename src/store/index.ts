// The per-user cache folder: opens its blob store, action cache, stat cache and step cache with one set of errors, for the client, `orion cc` and the daemons.
export { openCacheDir, type CacheDir } from "./cache-dir.js";
