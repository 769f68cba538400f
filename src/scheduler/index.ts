// The scheduler core's public surface.
export * from "./events.js";
export * from "./scheduler.js";
export { criticalPathPriorities } from "./critical-path.js";
export { PriorityQueue } from "./heap.js";
