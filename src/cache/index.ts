// The cache area's public surface: toolchain detection and program digests, action keys, the compile-cache protocol and the SQLite action cache.
export {
  detectToolchain,
  toolchainMemoFiles,
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
export {
  SYSTEM_PREFIXES,
  readCompileInputs,
  compileKey,
  compileProbes,
  lookupCompiled,
  compileManifest,
  recordCompiled,
  type CompileKey,
  type CompileInputs,
  type CompileCall,
  type CompileCacheOptions,
  type ProbeMemo,
  type RecordOptions,
  type CompileManifestOutcome,
  type CompileRecordOutcome,
} from "./compile-cache.js";
export { CHANGING, type FileView, type ReadDigest } from "./file-view.js";
export { ProgramDigests } from "./program-digests.js";
