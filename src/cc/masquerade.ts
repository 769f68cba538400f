// `orion masquerade DIR`: a folder of compiler-named links to Orion, so `PATH=DIR:$PATH make` sends every compile through `orion cc` without touching the Makefile.
import { makeDirSync } from "../core/fs.js";
import { lstatSync, readlinkSync, realpathSync, symlinkSync, unlinkSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError } from "../core/errors.js";
import { MASQUERADE_NAMES, findCompiler, orionLauncher } from "./compiler.js";

/** The names always linked; clang and clang++ only when the real ones are on PATH. */
const ALWAYS = ["gcc", "cc", "g++", "c++"];

/** The launcher links should point at: the running script when it is Orion's launcher, else this checkout's bin/orion. */
export function masqueradeTarget(scriptPath: string | undefined = process.argv[1]): string {
  if (scriptPath) {
    try {
      const real = realpathSync(scriptPath);
      if (basename(real) === "orion") return real;
    } catch {
      // not a file: fall through
    }
  }
  const launcher = orionLauncher();
  if (!launcher) throw new UsageError("cannot find Orion's bin/orion to link to");
  return realpathSync(launcher);
}

export interface MasqueradeResult {
  dir: string;
  /** Link names created (or refreshed), in order. */
  links: string[];
}

/**
 * Fills `dir` (created when absent) with links named gcc, cc, g++, c++ — and clang, clang++ when present
 * on PATH — pointing at `target`. Existing links are replaced; any other file of one of those names is
 * left alone and reported as a usage error.
 */
export function createMasquerade(dirArg: string, target: string, env: Record<string, string | undefined>, cwd: string): MasqueradeResult {
  const dir = resolve(cwd, dirArg);
  try {
    makeDirSync(dir);
  } catch (err) {
    throw new UsageError(`cannot create ${dir}: ${(err as Error).message}`, err);
  }
  const self = [realpathSync(target)];
  const names = MASQUERADE_NAMES.filter(
    (n) => ALWAYS.includes(n) || findCompiler(n, cwd, env, { selfPaths: self, skipDirs: [dir] }) !== undefined,
  );
  const links: string[] = [];
  for (const name of names) {
    const p = join(dir, name);
    let existing: ReturnType<typeof lstatSync> | undefined;
    try {
      existing = lstatSync(p);
    } catch {
      existing = undefined;
    }
    if (existing) {
      if (!existing.isSymbolicLink()) throw new UsageError(`${p} exists and is not a link; remove it or choose another directory`);
      if (readlinkSync(p) === target) {
        links.push(name);
        continue;
      }
      unlinkSync(p);
    }
    symlinkSync(target, p);
    links.push(name);
  }
  return { dir, links };
}
