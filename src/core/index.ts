// The core: digests, time and ids, errors and exit codes, logging. Everything else depends on it; it depends on nothing of Orion's.
export * from "./digest.js";
export * from "./clock.js";
export * from "./errors.js";
export * from "./disk-full.js";
export * from "./logger.js";
export * from "./validate.js";
export { makeDirSync } from "./fs.js";
export { parseAddress, LOOPBACK_HOSTS } from "./address.js";
export { onceAny, type Emitter } from "./events.js";
export { formatDuration, MAX_NO_NODE_TIMEOUT_MS, parseDuration } from "./duration.js";
