// Host steps (recipe lines run in the real tree, outside the graph): running one as make would, tracing what it reads and writes, and the step cache that restores it.
export { HostStepRunner, type HostStep, type HostStepOutcome, type HostStepRunnerOptions } from "./host-runner.js";
export { runHostStep, type HostStepOptions, type HostStepResult } from "./host-step.js";
export { StepCache, stepKey, recordStep, restoreStep, type StepEntry, type TreeState } from "./step-cache.js";
export { parseTrace, TRACED_SYSCALLS, type Access, type TraceResult } from "./trace.js";
