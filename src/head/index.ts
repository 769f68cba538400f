// The head's public surface.
export * from "./api.js";
export { Head, type HeadOptions } from "./head.js";
export { ContextIndex, toTreePath, type ContextEntry } from "./context-index.js";
export { SqliteDurationHistory, type DurationHistory } from "./durations.js";
