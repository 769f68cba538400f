// The toolchains a node advertises: the ones it was given (NAME=PATH), else the compilers, ar and ranlib on its PATH, each named by the digest a client computes for it.
import { ProgramDigests } from "../cache/index.js";
import { UsageError, errorMessage } from "../core/index.js";
import { findProgram } from "../core/programs.js";
import type { Toolchain } from "../gen/orion/v1/scheduler.js";

const DEFAULT_TOOLS = ["gcc", "g++", "cc", "c++", "clang", "clang++", "ar", "ranlib"];

export interface ToolchainSpec {
  name: string;
  path: string;
}

/** `NAME=PATH` as given on the command line. */
export function parseToolchainSpec(spec: string): ToolchainSpec {
  const i = spec.indexOf("=");
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`--toolchain takes NAME=PATH, not ${JSON.stringify(spec)}`);
  return { name: spec.slice(0, i), path: spec.slice(i + 1) };
}

export async function detectNodeToolchains(specs: readonly ToolchainSpec[] | undefined, options: { memoFile?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Toolchain[]> {
  const env = options.env ?? process.env;
  const given = specs && specs.length > 0;
  const wanted: ToolchainSpec[] = given
    ? specs.map((s) => {
        const path = findProgram(s.path, process.cwd(), env);
        if (!path) throw new UsageError(`--toolchain ${s.name}=${s.path}: no such executable`);
        return { name: s.name, path };
      })
    : DEFAULT_TOOLS.flatMap((name) => {
        const path = findProgram(name, process.cwd(), env);
        return path ? [{ name, path }] : [];
      });
  const programs = new ProgramDigests({ memoFile: options.memoFile });
  const out: Toolchain[] = [];
  for (const t of wanted) {
    try {
      out.push({ name: t.name, path: t.path, digest: await programs.digest(t.path) });
    } catch (err) {
      if (given) throw new UsageError(`--toolchain ${t.name}=${t.path}: ${errorMessage(err)}`, err);
      // A default that does not work (a broken clang) is simply not offered.
    }
  }
  return out;
}
