// Which command lines a node may run for someone else: refuses options that run other programs or load code, and paths that reach outside the project root and the toolchain's own directories.
import { posix } from "node:path";
import { ExitCode, OrionError, Status } from "../core/index.js";
import { type PathRole, type PathSlot, slotsOf, toolFamily, type ToolFamily } from "../compile/index.js";

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

function inside(abs: string, dir: string): boolean {
  const d = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  return abs === d || abs.startsWith(d === "/" ? "/" : `${d}/`);
}

/** Why `value` (a path in argv, relative to the cwd) may not be used with `role`; undefined when it may. */
export function pathProblem(value: string, role: PathRole, ctx: PolicyContext): string | undefined {
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
