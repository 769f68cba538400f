// Decides whether one compiler call is a cacheable single-source compile (parseCompileArgs plus the rules only `orion cc` needs) or runs as the compiler would.
import { isAbsolute, resolve } from "node:path";
import { type CompileArgs, ccUncacheableOption, parseCompileArgs } from "../compile/index.js";

export interface Classification {
  args: CompileArgs;
  cacheable: boolean;
  /** Why not, when not cacheable. */
  reason?: string;
}

/**
 * Environment variables that make the compiler write extra files or change its output in ways the key
 * does not cover; a call with any of them set runs uncached.
 */
const UNCACHEABLE_ENV = ["DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES", "GCC_COMPARE_DEBUG"];

/** True for paths that are not ordinary files to store and restore (`-o /dev/null`, `-MF /dev/stdout`). */
function isSpecialPath(p: string, cwd: string): boolean {
  const abs = isAbsolute(p) ? p : resolve(cwd, p);
  return p === "-" || abs.startsWith("/dev/") || abs.startsWith("/proc/");
}

export function classifyCall(argv: readonly string[], cwd: string, env: Record<string, string | undefined>): Classification {
  const args = parseCompileArgs([...argv], { implicitOutput: true });
  const { flags } = args.call;
  const mmd = flags.has("-MMD") || flags.has("-MM") || [...flags].some((f) => f.startsWith("-Wp,-MMD,"));
  const out: Classification = { args, cacheable: args.cacheable, reason: args.reason };
  // parseCompileArgs also calls a link cacheable (orion build keys links by their inputs); `orion cc` caches
  // compiles and dependency generation only.
  if (out.cacheable && args.kind !== "compile" && args.kind !== "depgen") {
    out.cacheable = false;
    out.reason = `a ${args.kind} runs uncached`;
  }
  if (!out.cacheable) return out;
  const problems: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const bad = ccUncacheableOption(argv[i]!);
    if (bad) problems.push(bad);
  }
  for (const name of UNCACHEABLE_ENV) if (env[name] !== undefined) problems.push(`${name} is set`);
  if (args.output !== undefined && isSpecialPath(args.output, cwd)) problems.push(`output ${args.output} is not a regular file`);
  if (args.depfile && isSpecialPath(args.depfile.path, cwd)) problems.push(`depfile ${args.depfile.path} is not a regular file`);
  for (const src of args.sources) if (isSpecialPath(src, cwd)) problems.push(`source ${src} is not a regular file`);
  if (args.depOutput !== undefined && isSpecialPath(args.depOutput, cwd)) problems.push(`dependency output ${args.depOutput} is not a regular file`);
  // -MMD/-MM leave out every header gcc deems a system header: those of -isystem/-idirafter/sysroot dirs too, which the
  // toolchain digest does not cover. Learning headers from such a depfile could miss a changed one, so do not cache.
  if (mmd && (args.isystemDirs.length > 0 || args.idirafterDirs.length > 0 || args.call.sysroots.length > 0)) {
    problems.push(`${flags.has("-MM") ? "-MM" : "-MMD"} hides the headers of -isystem/-idirafter/sysroot dirs`);
  }
  if (problems.length > 0) {
    out.cacheable = false;
    out.reason = problems.join("; ");
  }
  return out;
}
