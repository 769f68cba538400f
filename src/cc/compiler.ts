// Finding the real compiler for an `orion cc` call (never Orion itself, so masquerade links cannot recurse) and running it as the caller would have.
import { spawn } from "node:child_process";
import { defaultSpawnServer } from "../exec/run-process.js";
import { SpawnError } from "../exec/spawn-server.js";
import { existsSync, realpathSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CompilerCall, CompilerReply } from "./types.js";
import { isExecutableFile } from "../core/programs.js";

/** The names `orion masquerade` links and under which an invoked orion acts as `orion cc <name>`. */
export const MASQUERADE_NAMES: readonly string[] = ["gcc", "cc", "g++", "c++", "clang", "clang++"];

function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** This checkout's `bin/orion`, found by walking up from this module (works from src/ under vitest and from dist/). */
export function orionLauncher(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, "bin", "orion");
    if (existsSync(p) && existsSync(join(dir, "package.json"))) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/**
 * Real paths that are Orion itself: this checkout's launcher, plus the running script when it
 * looks like one (a copied launcher is still Orion). A PATH entry resolving to one of these is skipped.
 */
export function defaultSelfPaths(scriptPath: string | undefined = process.argv[1]): string[] {
  const out = new Set<string>();
  const launcher = orionLauncher();
  const real = launcher ? realpathOrUndefined(launcher) : undefined;
  if (real) out.add(real);
  const script = scriptPath ? realpathOrUndefined(scriptPath) : undefined;
  if (script && isOrionName(basename(script))) out.add(script);
  return [...out];
}

/** Orion's launcher and the native client are named orion / orion-cc: a compiler never is. */
function isOrionName(name: string): boolean {
  return name === "orion" || name.startsWith("orion-");
}

export interface FindCompilerOptions {
  /** Real paths of Orion's own executables (defaultSelfPaths()). */
  selfPaths: readonly string[];
  /** Directories never searched (the masquerade dir the launcher names in ORION_MASQUERADE_DIR). */
  skipDirs?: readonly string[];
}

/**
 * The absolute path of the compiler a call names, as execvp would find it (a name with a slash
 * against cwd, a bare name along the call's PATH), except that any candidate resolving to Orion
 * itself — a masquerade link — is passed over for the next one. Undefined when none is found.
 */
export function findCompiler(name: string, cwd: string, env: Record<string, string | undefined>, o: FindCompilerOptions): string | undefined {
  const self = new Set(o.selfPaths);
  const skip = new Set((o.skipDirs ?? []).map((d) => realpathOrUndefined(resolve(cwd, d)) ?? resolve(cwd, d)));
  const acceptable = (p: string): boolean => {
    if (!isExecutableFile(p)) return false;
    const real = realpathOrUndefined(p);
    return !!real && !self.has(real) && !isOrionName(basename(real));
  };
  if (name.includes("/")) {
    const p = isAbsolute(name) ? name : resolve(cwd, name);
    if (acceptable(p)) return p;
    // `orion cc /path/to/masquerade/gcc`: that is Orion; look for the real one by name.
    if (!isExecutableFile(p)) return undefined;
    name = basename(name);
  }
  for (const entry of (env.PATH ?? "").split(delimiter)) {
    // An empty PATH entry means the current directory, as for execvp.
    const dir = resolve(cwd, entry || ".");
    if (skip.has(realpathOrUndefined(dir) ?? dir)) continue;
    const p = join(dir, name);
    if (acceptable(p)) return p;
  }
  return undefined;
}

/** A child's end as a shell reports it: its exit code, or 128 + the signal that killed it. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}

/** The reply for a compiler that could not be started: 127 when missing, 126 when not runnable, as a shell says. */
export function notFoundReply(name: string, err?: NodeJS.ErrnoException): CompilerReply {
  const missing = !err || err.code === "ENOENT";
  const what = missing ? "command not found" : err.message;
  return { exitCode: missing ? 127 : 126, stdout: Buffer.alloc(0), stderr: Buffer.from(`orion cc: ${name}: ${what}\n`) };
}

/**
 * Runs `exe` with the call's arguments, cwd and env, plus `extraArgs`; stdin is closed and stdout/stderr
 * are captured byte for byte. argv[0] is `exe`'s absolute path, not the name the user gave: the gcc
 * driver finds cc1 relative to argv[0] (searching PATH for a bare name would find the masquerade link),
 * and it names itself in diagnostics by argv[0]'s basename, which is the same either way.
 */
export async function runCaptured(exe: string, call: CompilerCall, extraArgs: readonly string[] = []): Promise<CompilerReply> {
  // Through the native spawn server when it is built: a fork of the agent's Node process costs ~6 ms of its main
  // thread per compile, which on a busy machine is time taken from the compilers themselves.
  const server = defaultSpawnServer();
  if (server) {
    try {
      const r = await server.run([exe, ...call.argv.slice(1), ...extraArgs], { cwd: call.cwd, env: call.env, timeoutMs: COMPILE_TIMEOUT_MS, signal: call.signal });
      if (r) return { exitCode: r.exitCode ?? exitCodeOf(null, r.signal), stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      if (err instanceof SpawnError) return notFoundReply(call.argv[0] ?? exe, Object.assign(new Error(err.message), { code: err.code }));
      throw err;
    }
  }
  return runWithNode(exe, call, extraArgs);
}

/** A day: the agent never gives up on a compile that make is still waiting for. */
const COMPILE_TIMEOUT_MS = 24 * 3600 * 1000;

function runWithNode(exe: string, call: CompilerCall, extraArgs: readonly string[]): Promise<CompilerReply> {
  return new Promise((resolvePromise) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn(exe, [...call.argv.slice(1), ...extraArgs], {
      cwd: call.cwd,
      env: call.env,
      signal: call.signal,
      killSignal: "SIGKILL",
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.once("error", (e: NodeJS.ErrnoException) => resolvePromise(notFoundReply(call.argv[0] ?? exe, e)));
    child.once("close", (code, signal) => {
      resolvePromise({ exitCode: exitCodeOf(code, signal), stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

/**
 * Runs `exe` on this process's own stdin/stdout/stderr (a configure probe piping a program into
 * `gcc -x c -` sees its stdin), returning the exit code; nothing is captured.
 */
export function runInherited(exe: string, call: CompilerCall): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(exe, call.argv.slice(1), { cwd: call.cwd, env: call.env, stdio: "inherit" });
    child.once("error", (e: NodeJS.ErrnoException) => {
      const r = notFoundReply(call.argv[0] ?? exe, e);
      process.stderr.write(r.stderr);
      resolvePromise(r.exitCode);
    });
    child.once("close", (code, signal) => resolvePromise(exitCodeOf(code, signal)));
  });
}
