// The scheduler core: a build's task graph, critical-path ordering, retries and the events a build emits; no I/O.
export * from "./events.js";
export * from "./scheduler.js";
export { criticalPathPriorities } from "./critical-path.js";
export { findCycle, graphProblem, type GraphNode, type GraphProblem } from "./detect-cycles.js";
export { PriorityQueue } from "./heap.js";
