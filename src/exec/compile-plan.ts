// Rewrites a gcc/clang `-c` command so it runs in a shared, read-only input context while writing only to a private folder.
import { posix } from "node:path";
import { ExitCode, OrionError, Status } from "../core/index.js";
import { sandboxViolation } from "./input-root.js";
import { parseCompileArgs } from "../cache/compiler-args.js";

export interface CompilePlanInput {
  argv: readonly string[];
  /** The client's absolute project root: where the action believes the input root lives. */
  projectRoot: string;
  /** Relative to the input root; "" for the root itself. */
  workingDirectory: string;
  /** Absolute path of the materialized shared context (the input root). */
  ctxRoot: string;
  /** Absolute path of the action's private folder; it stands for the working directory's outputs. */
  privateDir: string;
}

export interface CompilePlan {
  argv: string[];
  /** Absolute path of the depfile gcc will write. */
  depfilePath: string;
  /** True when the user asked for the depfile (-MD/-MMD), so the rewritten text must replace it as an output. */
  depfileRequested: boolean;
  /** Folders inside `privateDir` that must exist before gcc runs (the parents of -o and -MF). */
  privateParents: string[];
  /** Sandbox prefix → project prefix, longest first; applied to the depfile and to diagnostics. */
  replacements: [from: string, to: string][];
}

/** Options whose separate argument names an input path under the project. */
const PATH_OPTIONS = new Set(["-I", "-iquote", "-isystem", "-idirafter", "-include", "-imacros", "-isysroot", "--sysroot"]);
/** Joined forms of the same (`-I/abs`); `--sysroot=` is handled with its `=`. */
const JOINED_PATH_OPTIONS = ["-iquote", "-isystem", "-idirafter", "-isysroot", "-I"];
/** Options whose separate argument must stay as written (macro values, depfile targets, languages). */
const OPAQUE_OPTIONS = new Set(["-D", "-U", "-MT", "-MQ", "-x", "-Xpreprocessor", "-Xassembler", "-Xlinker", "-aux-info"]);
const PREFIX_MAP_OPTIONS = ["-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=", "-fprofile-prefix-map="];
/** Any of these turns the command into something other than "compile one file to one object". */
const NOT_A_PLAIN_COMPILE = new Set(["-E", "-M", "-MM", "-S", "-fsyntax-only"]);

/** Whether `argv` is a compile the shared-context path can run: `-c`, an explicit `-o`, no preprocess-only mode. */
export function isSharedContextCompile(argv: readonly string[]): boolean {
  let compile = false;
  let output = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (NOT_A_PLAIN_COMPILE.has(a)) return false;
    if (a === "-c") compile = true;
    else if (a === "-o" && i + 1 < argv.length) output = true;
    else if (a.startsWith("-o") && a.length > 2) output = true;
    if (a === "-o" || OPAQUE_OPTIONS.has(a) || PATH_OPTIONS.has(a) || a === "-MF") i++;
  }
  return compile && output;
}

/**
 * A `-c` compile of one source without `-o` (hiredis, linenoise: `cc ... -c net.c`) writes `<source basename>.o` in
 * its cwd, as gcc does: the same call with that `-o` spelled out, so it can take the shared-context path (objects
 * free of sandbox paths, headers learned from the depfile); undefined when argv is not such a call.
 */
export function withImplicitObject(argv: readonly string[]): string[] | undefined {
  if (parseCompileArgs([...argv]).output !== undefined) return undefined;
  const implicit = parseCompileArgs([...argv], { implicitOutput: true });
  if (implicit.kind !== "compile" || implicit.sources.length !== 1 || !implicit.output?.endsWith(".o")) return undefined;
  return [...argv, "-o", implicit.output];
}

/** Drops a leading "./" chain and trailing slashes; "" for the root. Paths are relative and already validated. */
export function normalizeRelative(p: string): string {
  const n = posix.normalize(p === "" ? "." : p).replace(/\/+$/, "");
  return n === "." ? "" : n;
}

export function planSharedCompile(input: CompilePlanInput): CompilePlan {
  const { projectRoot, ctxRoot, privateDir } = input;
  const wd = normalizeRelative(input.workingDirectory);
  const projectWd = wd ? `${projectRoot}/${wd}/` : `${projectRoot}/`;
  const toCtx = (p: string) => (p === projectRoot || p.startsWith(projectRoot + "/") ? ctxRoot + p.slice(projectRoot.length) : p);

  const parents: string[] = [privateDir];
  /** Where the project prefix of the -o text went; the depfile target and diagnostics map back through it. */
  let outProjectPrefix = "";
  /** Maps an output path (-o, -MF) into the private folder, keeping its text so gcc's own depfile target can be recovered. */
  const toPrivate = (p: string, what: string, isObject: boolean): string => {
    let rel: string;
    if (posix.isAbsolute(p)) {
      if (!p.startsWith(projectWd)) throw sandboxViolation(`${what} ${p} is outside the working directory ${projectWd}`);
      rel = p.slice(projectWd.length);
      if (isObject) outProjectPrefix = projectWd;
    } else {
      rel = p;
      if (isObject) outProjectPrefix = "";
    }
    const n = posix.normalize(rel);
    if (n === ".." || n.startsWith("../") || n === ".") throw sandboxViolation(`${what} ${p} is outside the working directory`);
    const full = `${privateDir}/${rel}`;
    parents.push(posix.dirname(posix.normalize(full)));
    return full;
  };

  const out: string[] = [input.argv[0]!];
  // First, so that the user's own prefix maps (later on the command line) take precedence: gcc tries the last one first.
  out.push(`-ffile-prefix-map=${ctxRoot}=${projectRoot}`);
  let objectPath: string | undefined;
  let userDepfile: string | undefined;
  let wantsDeps = false;
  for (let i = 1; i < input.argv.length; i++) {
    const a = input.argv[i]!;
    const next = input.argv[i + 1];
    if (a === "-o" && next !== undefined) {
      objectPath = toPrivate(next, "output", true);
      out.push(a, objectPath);
      i++;
    } else if (a.startsWith("-o") && a.length > 2) {
      objectPath = toPrivate(a.slice(2), "output", true);
      out.push(`-o${objectPath}`);
    } else if (a === "-MF" && next !== undefined) {
      userDepfile = toPrivate(next, "depfile", false);
      out.push(a, userDepfile);
      i++;
    } else if (a.startsWith("-MF") && a.length > 3) {
      userDepfile = toPrivate(a.slice(3), "depfile", false);
      out.push(`-MF${userDepfile}`);
    } else if (a === "-MD" || a === "-MMD") {
      wantsDeps = true;
      out.push(a);
    } else if (PATH_OPTIONS.has(a) && next !== undefined) {
      out.push(a, toCtx(next));
      i++;
    } else if (OPAQUE_OPTIONS.has(a) && next !== undefined) {
      out.push(a, next);
      i++;
    } else if (a.startsWith("--sysroot=")) {
      out.push(`--sysroot=${toCtx(a.slice("--sysroot=".length))}`);
    } else if (PREFIX_MAP_OPTIONS.some((o) => a.startsWith(o))) {
      // The user's OLD named the project; in the sandbox the same files live under the context.
      const eq = a.indexOf("=");
      const value = a.slice(eq + 1);
      const sep = value.indexOf("="); // gcc splits at the first "=": OLD cannot contain one, NEW can
      out.push(sep > 0 ? `${a.slice(0, eq + 1)}${toCtx(value.slice(0, sep))}${value.slice(sep)}` : a);
    } else {
      const joined = JOINED_PATH_OPTIONS.find((o) => a.startsWith(o) && a.length > o.length);
      out.push(joined ? joined + toCtx(a.slice(joined.length)) : toCtx(a));
    }
  }
  if (objectPath === undefined) {
    throw new OrionError("compile plan needs an explicit -o", { exitCode: ExitCode.BUILD_FAILED, code: Status.INVALID_ARGUMENT });
  }

  let depfilePath: string;
  if (!wantsDeps) {
    // Orion learns the headers from gcc itself; this file is not an output the user asked for.
    depfilePath = `${privateDir}/.orion-deps.d`;
    out.push("-MD", "-MF", depfilePath);
  } else if (userDepfile !== undefined) {
    depfilePath = userDepfile;
  } else {
    depfilePath = defaultDepfilePath(objectPath);
  }

  return {
    argv: out,
    depfilePath,
    depfileRequested: wantsDeps,
    privateParents: [...new Set(parents)],
    replacements: [
      [`${privateDir}/`, outProjectPrefix],
      [ctxRoot, projectRoot],
    ],
  };
}

/** gcc's `%{o*:%.d%*}`: the -o path with its file-name suffix replaced by ".d". */
export function defaultDepfilePath(objectPath: string): string {
  const slash = objectPath.lastIndexOf("/");
  const dot = objectPath.lastIndexOf(".");
  return (dot > slash + 1 ? objectPath.slice(0, dot) : objectPath) + ".d";
}
