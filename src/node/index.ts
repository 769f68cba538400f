// The node's public surface.
export { Node, type NodeOptions, type ActionExecutor } from "./node.js";
export { FarmExecutor, type FarmExecutorOptions } from "./farm-executor.js";
export { detectNodeToolchains, parseToolchainSpec, DEFAULT_TOOLS, type ToolchainSpec } from "./toolchains.js";
