// Running one action in a sandbox on this machine: the node's executor, and the sandbox pieces it is made of.
export { LocalExecutor, storeInputs, type InputSource, type ExecRequest, type ExecOutcome, type LocalExecutorOptions } from "./local-executor.js";
export { isSharedContextCompile, planSharedCompile, type CompilePlan, type CompilePlanInput } from "./compile-plan.js";
export { rewriteDepfile, mungeMakePath } from "./depfile.js";
export { createSandbox, sandboxUnavailable, SANDBOX_UID, type ActionSandbox, type SandboxLimits, type SandboxOptions } from "./sandbox.js";
export { loadInputTree, materializeTree, checkSymlinks, type InputTree } from "./input-root.js";
