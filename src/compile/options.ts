// The one table of gcc/clang driver options Orion reads: which take a value (separate, joined, long spellings), what that value is (a path read or written, text kept as written, words for the linker, assembler or preprocessor), and which options the cache cannot key or policy refuses.

/** What an option's value is: a path the command reads or writes, text no path rewrite touches, or words passed to a sub-tool. */
export type ValueKind = "read" | "write" | "text" | "linker" | "assembler" | "preprocessor";

export interface OptionSpec {
  value: ValueKind;
  /** Also given glued to the option (`-Idir`, `-ofile`); every option here also takes its value as the next word. */
  joined: boolean;
}

const sep = (value: ValueKind): OptionSpec => ({ value, joined: false });
const both = (value: ValueKind): OptionSpec => ({ value, joined: true });

/** Every driver option whose value may be the next argv word, and what that value is. */
export const DRIVER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  "-o": both("write"), "-MF": both("write"), "-aux-info": sep("write"), "-dumpdir": sep("write"), "-dumpbase": sep("write"),
  "-I": both("read"), "-include": both("read"), "-imacros": both("read"), "-isystem": both("read"), "-iquote": both("read"),
  "-idirafter": both("read"), "-iprefix": both("read"), "-iwithprefix": both("read"), "-iwithprefixbefore": both("read"),
  "-isysroot": both("read"), "--sysroot": sep("read"), "-L": both("read"), "-T": sep("read"),
  "-D": both("text"), "-U": both("text"), "-x": both("text"), "-MT": both("text"), "-MQ": both("text"), "-l": both("text"),
  "-imultilib": sep("text"), "-Xclang": sep("text"), "--param": sep("text"), "-u": sep("text"), "-z": sep("text"),
  "-A": sep("text"), "-e": sep("text"), "-B": sep("text"), "-target": sep("text"), "--target": sep("text"), "-arch": sep("text"),
  "-auxbase": sep("text"), "-specs": sep("text"), "-wrapper": sep("text"),
  "-Xlinker": sep("linker"), "-Xassembler": sep("assembler"), "-Xpreprocessor": sep("preprocessor"),
};

/** Options that take the next argv word as their value when given alone. */
export const SEPARATE_VALUE_OPTIONS: ReadonlySet<string> = new Set(Object.keys(DRIVER_OPTIONS));

/** The joined-value options, longest first so that `-isystem` is never read as `-i…`. */
const JOINED: readonly string[] = Object.keys(DRIVER_OPTIONS)
  .filter((k) => DRIVER_OPTIONS[k]!.joined)
  .sort((a, b) => b.length - a.length);

/** The option a word like `-Idir` starts with and whose value it carries, or undefined. */
export function joinedOption(word: string): string | undefined {
  return JOINED.find((p) => word.startsWith(p) && word.length > p.length);
}

/** How a driver option's value is used when it is a path (the option table says), else undefined. */
export function pathRole(opt: string): "read" | "write" | undefined {
  const value = DRIVER_OPTIONS[opt]?.value;
  return value === "read" || value === "write" ? value : undefined;
}

/** gcc's long spellings of options that take a value (its option map), by the short option they stand for. */
const DRIVER_LONG: Record<string, string> = {
  "--output": "-o", "--include-directory": "-I", "--include-directory-after": "-idirafter", "--library-directory": "-L",
  "--include": "-include", "--imacros": "-imacros", "--include-prefix": "-iprefix", "--include-with-prefix": "-iwithprefix",
  "--include-with-prefix-after": "-iwithprefix", "--include-with-prefix-before": "-iwithprefixbefore", "--dumpdir": "-dumpdir",
  "--dumpbase": "-dumpbase", "--for-linker": "-Xlinker", "--for-assembler": "-Xassembler", "--prefix": "-B", "--specs": "-specs",
  "--sysroot": "--sysroot", "--language": "-x", "--define-macro": "-D", "--undefine-macro": "-U", "--library": "-l",
  "--force-link": "-u", "--entry": "-e",
};

/**
 * The short option a `--long[=value]` driver argument stands for: gcc also takes any unambiguous abbreviation of its long
 * options. "?" when an abbreviation could stand for several (then its value is checked as a path to read).
 */
export function driverLongOption(name: string): string | undefined {
  const exact = DRIVER_LONG[name];
  if (exact) return exact;
  if (name.length < 4) return undefined;
  const shorts = [...new Set(Object.entries(DRIVER_LONG).filter(([k]) => k.startsWith(name)).map(([, v]) => v))];
  if (shorts.length === 0) return undefined;
  if (shorts.includes("-B")) return "-B";
  if (shorts.includes("-specs")) return "-specs";
  return shorts.length === 1 ? shorts[0] : "?";
}

/** `-opt=value` driver options whose value is not a file the command reads or writes (maps, names, runtime paths). */
export const DRIVER_NOT_A_PATH = [
  "-fdebug-prefix-map=", "-ffile-prefix-map=", "-fmacro-prefix-map=", "-fprofile-prefix-map=", "-fdebug-compilation-dir=",
  "-ffile-compilation-dir=", "-fprofile-generate=", "-frandom-seed=", "-fsanitize", "-std=", "-march=", "-mtune=",
];

/** Options whose `OLD=NEW` value maps a path prefix in what the compiler writes (debug info, macros, profiles). */
export const PREFIX_MAP_OPTIONS: readonly string[] = ["-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=", "-fprofile-prefix-map="];

/** Source files by extension, and the language gcc compiles each as. */
export const SOURCE_LANGUAGE: Readonly<Record<string, string>> = {
  ".c": "c", ".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".cp": "c++", ".c++": "c++", ".C": "c++", ".CPP": "c++",
  ".i": "cpp-output", ".ii": "c++-cpp-output", ".s": "assembler", ".S": "assembler-with-cpp", ".sx": "assembler-with-cpp",
  ".m": "objective-c", ".mm": "objective-c++", ".M": "objective-c++",
};

/** Why an option makes a compile's result something its key cannot name (extra outputs, profile data), or undefined. */
export function uncacheableOption(a: string): string | undefined {
  if (a === "--coverage" || a === "-ftest-coverage" || a === "-fprofile-arcs") return `${a} writes profiling notes`;
  if (a.startsWith("-fprofile-") || a.startsWith("-fauto-profile") || a.startsWith("-fcreate-profile")) {
    return `${a} reads or writes profile data`;
  }
  if (a === "-save-temps" || a.startsWith("-save-temps=")) return `${a} writes extra outputs`;
  if (a === "-gsplit-dwarf") return "-gsplit-dwarf writes a second output (.dwo)";
  if (a.startsWith("-fdump-") || a.startsWith("-fcallgraph-info") || a === "-fstack-usage") {
    return `${a} writes extra outputs`;
  }
  return undefined;
}

/** Options `orion cc` also runs uncached: they bring in programs, plugins or specs the toolchain digest does not cover, or outputs Orion cannot name. */
export function ccUncacheableOption(a: string): string | undefined {
  if (a.startsWith("-B")) return `${a} changes the programs the driver runs`;
  if (a.startsWith("-fplugin")) return `${a} loads a compiler plugin`;
  if (a === "-specs" || a.startsWith("-specs=") || a.startsWith("--specs")) return `${a} reads a driver specs file`;
  if (a === "-wrapper") return "-wrapper runs the compiler's programs through another one";
  if (a === "-MG") return "-MG treats missing headers as generated";
  if (a.startsWith("-Wa,") && /(^|,)-a[a-z]*=/.test(a.slice(4))) return `${a} writes an assembler listing`;
  if (a === "-Xclang") return "-Xclang passes options Orion cannot see into";
  return undefined;
}

/** Why a node refuses a driver option whatever its value: it makes gcc/clang run another program or load code. */
export interface OptionRefusal {
  option: string;
  message: string;
}

/** Driver options that make gcc/clang run another program or load code: refused by policy whatever their value. */
export function programOption(a: string): OptionRefusal | undefined {
  const r = (option: string, message: string): OptionRefusal => ({ option, message });
  if (a === "-wrapper") return r(a, "it runs the compiler's programs through another program");
  if (a.startsWith("-B") || a.startsWith("--prefix")) return r(a.startsWith("-B") ? "-B" : "--prefix", "it changes where the driver finds the programs it runs");
  if (a === "-specs" || a.startsWith("-specs=") || a.startsWith("--specs")) return r(a.split("=")[0]!, "a specs file can run any program");
  if (a.startsWith("-fplugin") || a.startsWith("-fpass-plugin") || a.startsWith("-iplugindir")) return r(a.split("=")[0]!, "it loads a compiler plugin");
  if (a === "-Xclang") return r(a, "it passes options to the compiler proper that Orion cannot check (-load)");
  if (a.startsWith("--ld-path") || a.startsWith("--gcc-toolchain") || a === "-gcc-toolchain" || a.startsWith("--gcc-install-dir") || a.startsWith("-ccc-")) {
    return r(a.split("=")[0]!, "it changes which programs the driver runs");
  }
  if (a === "-working-directory" || a.startsWith("-working-directory=")) return r("-working-directory", "it moves the directory every relative path is resolved in");
  if (a.startsWith("-fuse-ld=") && !["bfd", "gold", "lld", "mold"].includes(a.slice("-fuse-ld=".length))) return r("-fuse-ld", "it names a linker program");
  return undefined;
}
