// The head: owns the scheduler, the action cache and the CAS; registers nodes and places leases on them, and runs builds for their clients (in-process or behind grpc/).
export * from "./api.js";
export { Head, type HeadOptions } from "./head.js";
export { ContextIndex, toTreePath, type ContextEntry } from "./context-index.js";
export { SqliteDurationHistory, type DurationHistory } from "./durations.js";
