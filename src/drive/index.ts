// make drives the build: its recipe lines reach Orion through the shell shim, and every tool call becomes an action.
export { runDriven, projectRoot, type DriveOptions, type DriveOutcome, type FarmAccess } from "./drive.js";
export { BuildCalls, SHELL_SHIM_NAME, commandStringIndex, describeCall, type LinePlan, type LinePlanner, type StepLines } from "./build-calls.js";
export { DriveEvents, LOCAL_NODE } from "./events.js";
export { ToolCache, type ToolCacheOptions } from "./tool-cache.js";
export { openStepLines, type StepLinesOptions } from "./step-lines.js";
