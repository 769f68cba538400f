// The node's public surface.
export { Node, type NodeOptions, type ActionExecutor } from "./node.js";
export { FarmExecutor, type FarmExecutorOptions } from "./farm-executor.js";
export { detectNodeToolchains, parseToolchainSpec, DEFAULT_TOOLS, type ToolchainSpec } from "./toolchains.js";
export { InputChain, type InputChainOptions, type InputChainStats, type WarmUp } from "./input-chain.js";
export { type TarProvisionStats, type TreeTarSource } from "./tar-provisioner.js";
export { type PeerFetchStats, type PeerSource } from "./peer-fetch.js";
