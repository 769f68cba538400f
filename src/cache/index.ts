// The cache area's public surface: compiler-argv parsing, toolchain detection and program digests, action keys and the SQLite action cache.
export { compileNeverReads, parseCompileArgs, type CompileArgs, type CompileKind } from "./compiler-args.js";
export {
  detectToolchain,
  clearToolchainMemo,
  parseVerboseOutput,
  TOOLCHAIN_KEY_VERSION,
  type Toolchain,
  type DetectToolchainOptions,
} from "./toolchain.js";
export {
  KEY_VERSION,
  KEY_ENV_ALLOWLIST,
  keyEnv,
  normalizeArgv,
  keyWorkingDir,
  compileLevel1Key,
  compileLevel2Key,
  ABSENT_HEADER,
  isAbsentHeader,
  linkKey,
  resolveLibraries,
  shadowProbes,
  parseDepfile,
  depfileInputs,
  depfileRules,
  type CompileLevel1Input,
  type LinkKeyInput,
} from "./keys.js";
export {
  SqliteActionCache,
  lookupValid,
  lookupCompile,
  referencedDigests,
  MAX_MANIFESTS_PER_KEY,
  type ActionCache,
  type SqliteActionCacheOptions,
} from "./action-cache.js";
export { ProgramDigests } from "./program-digests.js";
