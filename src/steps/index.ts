// Host steps (recipe lines run in the real tree, outside the graph): running one as make would, tracing what it reads and writes, and the step cache that restores it.
export { HostStepRunner, type HostLine, type HostLineOutcome, type HostStep, type HostStepOutcome, type HostStepRunnerOptions } from "./host-runner.js";
export { killGroup, runHostStep, type HostStepOptions, type HostStepResult } from "./host-step.js";
export { Fingerprinter, StepCache, stepKey, recordStep, restoreStep, STEP_KEY_VERSION, type StepEntry } from "./step-cache.js";
export { hashedTreeView, StateUnknownError, type EntryType, type TreeState, type TreeView } from "./tree-view.js";
export { LiveTreeView, StepStartView, walkTreeShape, type TreeShape } from "./tree-view-live.js";
export { parseTrace, TRACED_SYSCALLS, type Access, type TraceResult } from "./trace.js";
export { parsePreloadTrace, preloadBlindSpot } from "./preload-trace.js";
