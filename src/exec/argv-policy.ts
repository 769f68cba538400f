// Which command lines a node may run for someone else: refuses options that run other programs or load code, and paths that reach outside the project root and the toolchain's own directories.
import { posix } from "node:path";
import { ExitCode, OrionError, Status } from "../core/index.js";
import { DRIVER_OPTIONS, SEPARATE_VALUE_OPTIONS, joinedOption, programOption, toolFamily, type ToolFamily } from "../compile/index.js";

/**
 * Directories that belong to the toolchain and the system: a compile or link may read under them (headers, crt files,
 * libraries, linker scripts), never write. The same prefixes the compile keys treat as the toolchain's (prepare.ts, cc).
 */
export const SYSTEM_READ_PREFIXES: readonly string[] = ["/usr/", "/lib/", "/lib64/"];

/** What a command is checked against. */
export interface PolicyContext {
  /** The client's absolute project root: what a command may read and write. */
  projectRoot: string;
  /** The command's absolute working directory (inside the project root), against which relative paths resolve. */
  cwd: string;
  /** More directories the toolchain reads (its system include dirs), beside SYSTEM_READ_PREFIXES. */
  toolchainDirs?: readonly string[];
}

/** Why a command is refused: the option (or argument) at fault, and a sentence that names it. */
export interface Refusal {
  option: string;
  message: string;
}

/** A refused command: the user's error (exit 1), never an infrastructure failure to retry elsewhere. */
export class ArgvRefusedError extends OrionError {
  readonly refusal: Refusal;
  constructor(refusal: Refusal, what?: string) {
    super(`${what ? `${what}: ` : ""}refused ${refusal.option}: ${refusal.message}`, { exitCode: ExitCode.BUILD_FAILED, code: Status.INVALID_ARGUMENT });
    this.name = "ArgvRefusedError";
    this.refusal = refusal;
  }
}

export { toolFamily, type ToolFamily };

/** A read path may lie in the project or the toolchain's directories; a write path only in the project. */
type Role = "read" | "write";

/** One place in argv a path sits: arg `index`, characters [start, end). */
export interface PathSlot {
  index: number;
  start: number;
  end: number;
  role: Role;
  /** The option it belongs to, for messages ("-I", "-Wl,-T", "operand"). */
  option: string;
}

type Found = { slot: PathSlot } | { refuse: Refusal };

function refuse(option: string, message: string): Found {
  return { refuse: { option, message } };
}

/** How a driver option's value is used when it is a path (the option table says), else undefined. */
function pathRole(opt: string): Role | undefined {
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
function driverLongOption(name: string): string | undefined {
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
const DRIVER_NOT_A_PATH = [
  "-fdebug-prefix-map=", "-ffile-prefix-map=", "-fmacro-prefix-map=", "-fprofile-prefix-map=", "-fdebug-compilation-dir=",
  "-ffile-compilation-dir=", "-fprofile-generate=", "-frandom-seed=", "-fsanitize", "-std=", "-march=", "-mtune=",
];

/** Linker options that take the next word, and what it is ("opaque": a name, an address, a run-time path). */
const LINKER_VALUE: Record<string, Role | "opaque" | "program"> = {
  "-o": "write", "--output": "write", "-Map": "write", "--Map": "write", "--out-implib": "write", "--dependency-file": "write",
  "-T": "read", "--script": "read", "-dT": "read", "--default-script": "read", "-L": "read", "--library-path": "read",
  "--version-script": "read", "--dynamic-list": "read", "-rpath-link": "read", "--rpath-link": "read", "--just-symbols": "read",
  "-Y": "read", "--retain-symbols-file": "read", "-c": "read", "--mri-script": "read", "--sysroot": "read",
  "-plugin": "program", "--plugin": "program",
  "-rpath": "opaque", "--rpath": "opaque", "-R": "opaque", "-soname": "opaque", "--soname": "opaque", "-h": "opaque",
  "-e": "opaque", "--entry": "opaque", "-u": "opaque", "--undefined": "opaque", "-y": "opaque", "--trace-symbol": "opaque",
  "-z": "opaque", "-m": "opaque", "-b": "opaque", "--format": "opaque", "-A": "opaque", "--architecture": "opaque",
  "-F": "opaque", "--filter": "opaque", "-f": "opaque", "--auxiliary": "opaque", "-G": "opaque", "-I": "opaque",
  "--dynamic-linker": "opaque", "--defsym": "opaque", "--wrap": "opaque", "--hash-style": "opaque",
  "--section-start": "opaque", "-Ttext": "opaque", "-Tdata": "opaque", "-Tbss": "opaque", "-Ttext-segment": "opaque",
  "-Trodata-segment": "opaque", "-Tldata-segment": "opaque", "--image-base": "opaque", "--exclude-libs": "opaque",
  "--require-defined": "opaque", "--oformat": "opaque", "-a": "opaque", "--sort-section": "opaque", "-plugin-opt": "opaque",
  "--plugin-opt": "opaque", "-l": "opaque", "--library": "opaque",
};

/**
 * What an abbreviated long linker option (`--scr=…`, ld takes any unambiguous prefix) may stand for: a plugin is
 * refused, a path is checked (written if any candidate writes); a name is never trusted to swallow the next word
 * unchecked, since a flag that happens to prefix one (`--trace`, `--trace-symbol`) takes none.
 */
function abbreviatedLinkerOption(name: string): Role | "program" | undefined {
  const bare = name.replace(/^-+/, "");
  if (bare.length < 3) return undefined;
  const kinds = Object.entries(LINKER_VALUE)
    .filter(([k]) => k.replace(/^-+/, "").startsWith(bare))
    .map(([, kind]) => kind);
  if (kinds.includes("program")) return "program";
  if (kinds.includes("write")) return "write";
  if (kinds.includes("read")) return "read";
  return undefined;
}

/**
 * Walks linker words (`ld`'s argv, or the pieces of `-Wl,` and `-Xlinker`), carrying "the next word is a value" across
 * driver arguments, as the linker sees them joined. `at(start, end)` places a path slot within the current argument.
 */
class LinkerWalker {
  private pending?: { option: string; kind: Role | "opaque" | "program" };

  feed(word: string, at: (role: Role, option: string, start: number, end: number) => Found, offset: number, out: Found[]): void {
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      if (p.kind === "program") out.push(refuse(p.option, "it loads a linker plugin"));
      else if (p.kind === "opaque") libraryName(p.option, word, out);
      else out.push(at(p.kind, p.option, offset, offset + word.length));
      return;
    }
    if (!word.startsWith("-") || word === "-") {
      if (word.startsWith("@")) out.push(at("read", "@file", offset + 1, offset + word.length));
      else out.push(at("read", "linker input", offset, offset + word.length));
      return;
    }
    const eq = word.indexOf("=");
    const name = eq > 0 ? word.slice(0, eq) : word;
    // GNU ld accepts a single dash for long options (-Map, -rpath) and a double one for short ones.
    const kind = LINKER_VALUE[name] ?? LINKER_VALUE[name.replace(/^--/, "-")] ?? LINKER_VALUE[`-${name}`] ?? abbreviatedLinkerOption(name);
    if (kind === "program" || name === "-plugin" || name === "--plugin") {
      out.push(refuse(name, "it loads a linker plugin"));
      return;
    }
    if (kind !== undefined) {
      if (eq > 0) {
        if (kind === "opaque") libraryName(name, word.slice(eq + 1), out);
        else out.push(at(kind, name, offset + eq + 1, offset + word.length));
      } else this.pending = { option: name, kind };
      return;
    }
    // Joined short forms: -Ldir, -Tscript, -lname, -ofile (-Ttext=… and friends are addresses, matched above by name).
    for (const [prefix, role] of [["-L", "read"], ["-T", "read"], ["-o", "write"]] as const) {
      if (word.startsWith(prefix) && word.length > prefix.length && !word.startsWith("-Tt") && !word.startsWith("-Td") && !word.startsWith("-Tb") && !word.startsWith("-Tr") && !word.startsWith("-Tl")) {
        out.push(at(role, prefix, offset + prefix.length, offset + word.length));
        return;
      }
    }
    if (word.startsWith("-l")) {
      libraryName("-l", word.slice(2), out);
      return;
    }
    // An option Orion does not know: a value that looks like a path is checked as one.
    if (eq > 0) out.push(at("read", name, offset + eq + 1, offset + word.length));
  }

  /** A value still expected when the words run out (`-Wl,-T` at the end): nothing to check, the linker will complain. */
  done(): void {
    this.pending = undefined;
  }
}

/** `-l:../../etc/x` would climb out of every library directory; a library name with a path in it is not one. */
function libraryName(option: string, value: string, out: Found[]): void {
  if ((option === "-l" || option === "--library") && (value.startsWith("/") || value.split("/").includes(".."))) {
    out.push(refuse(option, `library name ${value} is a path`));
  }
}

/** Path slots and refusals of a driver (gcc, cc, clang…) command line. */
function driverSlots(argv: readonly string[], out: Found[], linker = new LinkerWalker(), cppPieces = false): void {
  const at = (index: number) => (role: Role, option: string, start: number, end: number): Found => ({ slot: { index, start, end, role, option } });
  /** The value of option `opt`: argument `index` (`text`) from character `start` on; `shown` is how argv spelled the option. */
  const driverValue = (opt: string, text: string, start: number, index: number, shown: string): void => {
    const v = text.slice(start);
    const role = pathRole(opt);
    if (role) out.push(at(index)(role, shown, start, text.length));
    else if (opt === "-Xlinker") linker.feed(v, at(index), start, out);
    else if (opt === "-Xassembler") assemblerPiece(v, at(index), start, out);
    else if (opt === "-Xpreprocessor") {
      const inner: Found[] = [];
      driverSlots(["", v], inner, linker, true);
      for (const f of inner) out.push("slot" in f ? { slot: { ...f.slot, index, start: f.slot.start + start, end: f.slot.end + start } } : f);
    } else if (opt === "-imultilib" && (v.startsWith("/") || v.split("/").includes(".."))) out.push(refuse(shown, `${v} is not a subdirectory name`));
    else if (opt === "-l") libraryName("-l", v, out);
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-" || !a.startsWith("-")) {
      if (a.startsWith("@")) out.push(at(i)("read", "@file", 1, a.length));
      else out.push(at(i)("read", "input", 0, a.length));
      continue;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(0, eq) : a;
      const short = driverLongOption(name);
      if (short === "-B" || short === "-specs") {
        out.push(refuse(name, short === "-B" ? "it changes where the driver finds the programs it runs" : "a specs file can run any program"));
        if (eq < 0) i++;
        continue;
      }
      if (short) {
        if (eq > 0) driverValue(short === "?" ? "--sysroot" : short, a, eq + 1, i, name);
        else if (i + 1 < argv.length) {
          i++;
          driverValue(short === "?" ? "--sysroot" : short, argv[i]!, 0, i, name);
        }
        continue;
      }
    }
    const bad = programOption(a);
    if (bad) {
      out.push({ refuse: bad });
      if (SEPARATE_VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    // In -Wp, pieces, cc1's -MD/-MMD name the depfile.
    if (cppPieces && (a === "-MD" || a === "-MMD") && i + 1 < argv.length) {
      out.push(at(++i)("write", a, 0, argv[i]!.length));
      continue;
    }
    if (SEPARATE_VALUE_OPTIONS.has(a)) {
      if (i + 1 >= argv.length) break;
      i++;
      driverValue(a, argv[i]!, 0, i, a);
      continue;
    }
    if (a.startsWith("-Wl,") || a.startsWith("-Wa,") || a.startsWith("-Wp,")) {
      let offset = 4;
      const pieces = a.slice(4).split(",");
      if (a.startsWith("-Wp,")) {
        const inner: Found[] = [];
        driverSlots(["", ...pieces], inner, linker, true);
        // Pieces are words 1.. of that pseudo-argv: place their slots back inside this argument.
        const starts: number[] = [];
        for (const piece of pieces) {
          starts.push(offset);
          offset += piece.length + 1;
        }
        for (const f of inner) out.push("slot" in f ? { slot: { ...f.slot, index: i, start: starts[f.slot.index - 1]! + f.slot.start, end: starts[f.slot.index - 1]! + f.slot.end } } : f);
        continue;
      }
      for (const piece of pieces) {
        if (a.startsWith("-Wl,")) linker.feed(piece, at(i), offset, out);
        else assemblerPiece(piece, at(i), offset, out);
        offset += piece.length + 1;
      }
      continue;
    }
    const joined = joinedOption(a);
    const joinedRole = joined && pathRole(joined);
    if (joined && joinedRole) {
      // `-I=dir` is relative to the sysroot; the dir itself is what is checked.
      const start = joined.length + (joined === "-I" && a[2] === "=" ? 1 : 0);
      out.push(at(i)(joinedRole, joined, start, a.length));
      continue;
    }
    if (a.startsWith("-T") && a.length > 2 && !/^-T(text|data|bss)/.test(a)) {
      out.push(at(i)("read", "-T", 2, a.length));
      continue;
    }
    if (a.startsWith("-l")) {
      libraryName("-l", a.slice(2), out);
      continue;
    }
    if (a.startsWith("-D") || a.startsWith("-U")) continue;
    const eq = a.indexOf("=");
    if (eq < 0 || DRIVER_NOT_A_PATH.some((p) => a.startsWith(p))) continue;
    const name = a.slice(0, eq);
    // Dumps and optimization reports written to a named file.
    const role: Role = a.startsWith("-fdump-") || a.startsWith("-fopt-info") || a.startsWith("-fprofile-note") || a.startsWith("-ftime-trace") ? "write" : "read";
    const value = a.slice(eq + 1);
    if (name === "--sysroot" || isPathLike(value)) out.push(at(i)(role, name, eq + 1, a.length));
  }
  linker.done();
}

/** One assembler word (`-Wa,` piece or `-Xassembler` value): its outputs, include dirs, and anything path-like. */
function assemblerPiece(piece: string, at: (role: Role, option: string, start: number, end: number) => Found, offset: number, out: Found[]): void {
  if (piece.startsWith("-o") && piece.length > 2) out.push(at("write", "-Wa,-o", offset + 2, offset + piece.length));
  else if (piece.startsWith("-I") && piece.length > 2) out.push(at("read", "-Wa,-I", offset + 2, offset + piece.length));
  else if (/^-a[a-z]*=/.test(piece) || piece.startsWith("--MD=")) out.push(at("write", piece.slice(0, piece.indexOf("=")), offset + piece.indexOf("=") + 1, offset + piece.length));
  else if (piece.startsWith("@")) out.push(at("read", "@file", offset + 1, offset + piece.length));
  else if (piece.includes("=") && isPathLike(piece.slice(piece.indexOf("=") + 1))) out.push(at("read", piece.slice(0, piece.indexOf("=")), offset + piece.indexOf("=") + 1, offset + piece.length));
  // Separate values (`-Wa,-o,file`, `-Wa,--MD,file`): any word that names a path is checked; an output is checked as a read would be, the stricter rule below covers writes in the project.
  else if (!piece.startsWith("-") && isPathLike(piece)) out.push(at("write", "assembler argument", offset, offset + piece.length));
}

/** Absolute, or climbing with `..`: worth checking even where Orion does not know the option's meaning. */
function isPathLike(v: string): boolean {
  return v.startsWith("/") || v.split("/").includes("..");
}

/** `ar [--plugin P] [--target T] [-]op[mods] [relpos] [count] archive members…`. */
function arSlots(argv: readonly string[], out: Found[]): void {
  const at = (index: number, role: Role, option: string) => ({ slot: { index, start: 0, end: argv[index]!.length, role, option } });
  let i = 1;
  let op: string | undefined;
  const operands: number[] = [];
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--plugin" || a.startsWith("--plugin=")) {
      out.push(refuse("--plugin", "it loads a plugin into ar"));
      if (a === "--plugin") i++;
    } else if (a === "--target") i++;
    else if (a.startsWith("--output=")) out.push({ slot: { index: i, start: "--output=".length, end: a.length, role: "write", option: "--output" } });
    else if (a === "--output" && i + 1 < argv.length) out.push(at(++i, "write", "--output"));
    else if (a.startsWith("--")) continue;
    else if (op === undefined) op = a.replace(/^-/, "");
    else if (a.startsWith("@")) out.push({ slot: { index: i, start: 1, end: a.length, role: "read", option: "@file" } });
    else operands.push(i);
  }
  if (op === undefined) return;
  if (/x/.test(op) && /P/.test(op)) out.push(refuse("P", "extracting with full path names writes wherever the archive says"));
  let skip = (/[abi]/.test(op) ? 1 : 0) + (/N/.test(op) ? 1 : 0);
  let archive = true;
  for (const index of operands) {
    if (skip > 0) {
      skip--;
      continue;
    }
    out.push(at(index, archive ? "write" : "read", archive ? "archive" : "member"));
    archive = false;
  }
}

function ranlibSlots(argv: readonly string[], out: Found[]): void {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--plugin" || a.startsWith("--plugin=")) {
      out.push(refuse("--plugin", "it loads a plugin into ranlib"));
      if (a === "--plugin") i++;
    } else if (a.startsWith("@")) out.push({ slot: { index: i, start: 1, end: a.length, role: "read", option: "@file" } });
    else if (!a.startsWith("-")) out.push({ slot: { index: i, start: 0, end: a.length, role: "write", option: "archive" } });
  }
}

function ldSlots(argv: readonly string[], out: Found[]): void {
  const linker = new LinkerWalker();
  for (let i = 1; i < argv.length; i++) {
    linker.feed(argv[i]!, (role, option, start, end) => ({ slot: { index: i, start, end, role, option } }), 0, out);
  }
  linker.done();
}

function slotsOf(argv: readonly string[], family: ToolFamily): Found[] {
  const out: Found[] = [];
  if (family === "driver") driverSlots(argv, out);
  else if (family === "ar") arSlots(argv, out);
  else if (family === "ranlib") ranlibSlots(argv, out);
  else ldSlots(argv, out);
  return out;
}

function inside(abs: string, dir: string): boolean {
  const d = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  return abs === d || abs.startsWith(d === "/" ? "/" : `${d}/`);
}

/** Why `value` (a path in argv, relative to the cwd) may not be used with `role`; undefined when it may. */
export function pathProblem(value: string, role: Role, ctx: PolicyContext): string | undefined {
  if (value === "" || value === "-" || value === "/dev/null") return undefined;
  const abs = posix.resolve(ctx.cwd, value);
  if (inside(abs, ctx.projectRoot)) return undefined;
  if (role === "read" && [...SYSTEM_READ_PREFIXES, ...(ctx.toolchainDirs ?? [])].some((d) => inside(abs, d))) return undefined;
  if (!posix.isAbsolute(value)) return `${value} climbs out of the project root ${ctx.projectRoot}`;
  return role === "write"
    ? `${value} is outside the project root ${ctx.projectRoot}`
    : `${value} is outside the project root ${ctx.projectRoot} and the toolchain's directories`;
}

/** The first reason `argv` may not run for someone else, or undefined. `family` defaults to what argv[0] names; an unknown tool is checked as a compiler driver. */
export function argvRefusal(argv: readonly string[], ctx: PolicyContext, family: ToolFamily = toolFamily(argv[0]) ?? "driver"): Refusal | undefined {
  for (const f of slotsOf(argv, family)) {
    if ("refuse" in f) return f.refuse;
    const { index, start, end, role, option } = f.slot;
    const arg = argv[index]!;
    const value = arg.slice(start, end);
    if (option === "@file") return { option: `@${value}`, message: "a response file must be expanded before it is checked" };
    const problem = pathProblem(value, role, ctx);
    if (problem) return { option: option === "input" || option === "linker input" || option === "member" || option === "archive" ? `${option} ${value}` : option, message: problem };
  }
  return undefined;
}

/**
 * Rewrites every path in `argv` that the policy knows of — plain arguments, joined options (`-I/abs`, `-Wl,-T,/abs`,
 * `--sysroot=/abs`) — through `map` (which returns the path unchanged when it has nothing to say). Arguments Orion
 * knows nothing of are left as they are.
 */
export function mapArgvPaths(
  argv: readonly string[],
  map: (path: string) => string,
  options: { family?: ToolFamily; only?: (slot: PathSlot) => boolean } = {},
): string[] {
  const byArg = new Map<number, PathSlot[]>();
  for (const f of slotsOf(argv, options.family ?? toolFamily(argv[0]) ?? "driver")) {
    if (!("slot" in f) || (options.only && !options.only(f.slot))) continue;
    const list = byArg.get(f.slot.index) ?? [];
    list.push(f.slot);
    byArg.set(f.slot.index, list);
  }
  return argv.map((arg, index) => {
    const slots = byArg.get(index);
    if (!slots) return arg;
    let out = arg;
    for (const s of [...slots].sort((x, y) => y.start - x.start)) out = out.slice(0, s.start) + map(out.slice(s.start, s.end)) + out.slice(s.end);
    return out;
  });
}

/** The only environment variables an action may set (the key's allowlist, and PATH), and how each is checked. */
const ENV_RULES: Record<string, "read-list" | "program-list" | "path-list" | "opaque"> = {
  CPATH: "read-list",
  C_INCLUDE_PATH: "read-list",
  CPLUS_INCLUDE_PATH: "read-list",
  LIBRARY_PATH: "read-list",
  GCC_EXEC_PREFIX: "program-list",
  COMPILER_PATH: "program-list",
  PATH: "path-list",
  SOURCE_DATE_EPOCH: "opaque",
  LANG: "opaque",
  LC_ALL: "opaque",
  LC_CTYPE: "opaque",
  LC_MESSAGES: "opaque",
};

/** Why an action's environment may not be used (LD_PRELOAD, a PATH into the project…), or undefined. */
export function envRefusal(env: readonly { name: string; value: string }[], ctx: PolicyContext): Refusal | undefined {
  for (const { name, value } of env) {
    const rule = ENV_RULES[name];
    if (!rule) return { option: name, message: `environment variable ${name} is not one an action may set` };
    if (rule === "opaque") continue;
    for (const entry of value.split(":")) {
      if (rule === "read-list") {
        const problem = pathProblem(entry, "read", ctx);
        if (problem) return { option: name, message: problem };
      } else if (rule === "program-list") {
        // Where gcc looks for cc1, as and ld: the toolchain's own directories only, never the project's files.
        const abs = posix.resolve(ctx.cwd, entry);
        if (entry === "" || !posix.isAbsolute(entry) || !SYSTEM_READ_PREFIXES.some((d) => inside(abs, d))) {
          return { option: name, message: `${entry || "(empty)"} is not a toolchain directory; it would choose the programs gcc runs` };
        }
      } else if (entry === "" || !posix.isAbsolute(entry) || inside(posix.resolve(entry), ctx.projectRoot)) {
        // An empty or relative PATH entry, or one in the project, finds programs (as, ld) the client wrote.
        return { option: name, message: `PATH entry ${JSON.stringify(entry)} would find programs in the project` };
      }
    }
  }
  return undefined;
}

/**
 * Splits a response file's text as gcc's libiberty does (buildargv): words separated by white space, single and double
 * quotes group, a backslash escapes the next character anywhere.
 */
export function splitResponseFile(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let squote = false;
  let dquote = false;
  let escaped = false;
  for (const ch of text) {
    if (escaped) {
      escaped = false;
      word = (word ?? "") + ch;
    } else if (ch === "\\") {
      escaped = true;
      word ??= "";
    } else if (squote) {
      if (ch === "'") squote = false;
      else word = (word ?? "") + ch;
    } else if (dquote) {
      if (ch === '"') dquote = false;
      else word = (word ?? "") + ch;
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "'") {
      squote = true;
      word ??= "";
    } else if (ch === '"') {
      dquote = true;
      word ??= "";
    } else word = (word ?? "") + ch;
  }
  if (word !== undefined) words.push(word);
  return words;
}

const MAX_RESPONSE_FILES = 64;

/**
 * Replaces each `@file` argument by the words of that file, as gcc, ar and ld do, so the policy sees every option: a
 * response file must lie in the project (or the toolchain's directories) and be readable through `read` (absolute
 * path → text, undefined when there is no such file). Nested files are expanded too, up to a bound.
 */
export async function expandResponseFiles(
  argv: readonly string[],
  ctx: PolicyContext,
  read: (absPath: string) => Promise<string | undefined>,
): Promise<{ argv: string[] } | { refusal: Refusal }> {
  if (!argv.some((a, i) => i > 0 && a.startsWith("@"))) return { argv: [...argv] };
  const out: string[] = [argv[0]!];
  let files = 0;
  const expand = async (words: readonly string[]): Promise<Refusal | undefined> => {
    for (const w of words) {
      if (!w.startsWith("@") || w.length === 1) {
        out.push(w);
        continue;
      }
      const path = w.slice(1);
      const problem = pathProblem(path, "read", ctx);
      if (problem) return { option: w, message: `response file ${problem}` };
      if (++files > MAX_RESPONSE_FILES) return { option: w, message: `more than ${MAX_RESPONSE_FILES} response files` };
      const text = await read(posix.resolve(ctx.cwd, path));
      if (text === undefined) return { option: w, message: `response file ${path} is not a file of the project` };
      const inner = await expand(splitResponseFile(text));
      if (inner) return inner;
    }
    return undefined;
  };
  const refusal = await expand(argv.slice(1));
  return refusal ? { refusal } : { argv: out };
}

/** Everything about a command a node checks before running it for someone else: its argv (response files expanded) and its environment. */
export async function commandRefusal(
  argv: readonly string[],
  env: readonly { name: string; value: string }[],
  ctx: PolicyContext,
  read: (absPath: string) => Promise<string | undefined>,
  family: ToolFamily = toolFamily(argv[0]) ?? "driver",
): Promise<{ argv: string[] } | { refusal: Refusal }> {
  const expanded = await expandResponseFiles(argv, ctx, read);
  if ("refusal" in expanded) return expanded;
  const refusal = argvRefusal(expanded.argv, ctx, family) ?? envRefusal(env, ctx);
  return refusal ? { refusal } : expanded;
}
