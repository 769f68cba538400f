// The scheduler core's public surface.
export * from "./events.js";
export * from "./scheduler.js";
export { criticalPathPriorities } from "./critical-path.js";
export { findCycle, graphProblem, type GraphNode, type GraphProblem } from "./detect-cycles.js";
export { PriorityQueue } from "./heap.js";
