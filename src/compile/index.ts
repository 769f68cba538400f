// One compile model: a gcc/clang, ar, ranlib or ld argv read once, against one option table, into the typed call every other part of Orion asks about.
export { DRIVER_OPTIONS, PREFIX_MAP_OPTIONS, SEPARATE_VALUE_OPTIONS, SOURCE_LANGUAGE, joinedOption, uncacheableOption, ccUncacheableOption, programOption, type OptionSpec, type OptionRefusal, type ValueKind } from "./options.js";
export { toolFamily, isCompilerDriver, isCxxDriver, type ToolFamily } from "./tools.js";
export { parseDriver, type CallKind, type DriverCall, type Operand } from "./driver.js";
export { parseCompileArgs, uncacheableReasons, type CompileArgs, type CompileKind, type ParseOptions } from "./compile-args.js";
export { withExtension, withExplicitOutput, defaultDepfilePath, compileNeverReads } from "./outputs.js";
export { embedsCwd } from "./debug-info.js";
export { parseAr, parseRanlib, arWritesArchive, type ArCall, type RanlibCall, type Word } from "./archive.js";
export { slotsOf } from "./slots.js";
export type { PathRole, PathSlot, Found } from "./slot.js";
export { splitDriverCall, type DriverSplit } from "./split.js";
