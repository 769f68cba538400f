// A farm node: registers with a head, leases actions, brings their inputs (from itself, peers or the head) and runs them through exec/; also names the toolchains it offers.
export { Node, type NodeOptions, type ActionExecutor } from "./node.js";
export { FarmExecutor, type FarmExecutorOptions } from "./farm-executor.js";
export { detectNodeToolchains, parseToolchainSpec, type ToolchainSpec } from "./toolchains.js";
export { InputChain, type InputChainOptions, type InputChainStats, type WarmUp } from "./input-chain.js";
export { type TarProvisionStats, type TreeTarSource } from "./tar-provisioner.js";
export { type PeerFetchStats, type PeerSource } from "./peer-fetch.js";
