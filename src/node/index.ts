// The node's public surface.
export { Node, type NodeOptions, type ActionExecutor } from "./node.js";
