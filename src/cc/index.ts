// The `orion cc` area's public surface: the call/reply types the agent speaks, the caching CallHandler, the in-process command, masquerade links and the counters.
export type { CallHandler, CompilerCall, CompilerReply } from "./types.js";
export { CcService, type CcServiceOptions } from "./service.js";
export { classifyCall, type Classification } from "./classify.js";
export { MASQUERADE_NAMES, defaultSelfPaths, findCompiler, orionLauncher, runCaptured, runInherited, type FindCompilerOptions } from "./compiler.js";
export { ccCommand, type CcConfig, type CcCommandOptions } from "./command.js";
export { createMasquerade, masqueradeTarget, type MasqueradeResult } from "./masquerade.js";
export { CcStats, type CcCounter, type CcCounts } from "./stats.js";
