// Finding the programs a build runs and naming each by a digest: compilers by their toolchain, other tools by their bytes.
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { isCompilerDriver } from "../../dag-extract/classify.js";
import { detectToolchain } from "../cache/index.js";
import { digestOfFile, OrionError } from "../core/index.js";

/** Resolves a program as execvp would: a name with a slash against cwd, a bare name along PATH. */
export function findProgram(program: string, cwd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (program.includes("/")) {
    const p = isAbsolute(program) ? program : resolve(cwd, program);
    return isExecutableFile(p) ? p : undefined;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Digests the programs of a build once per process: compilers through detectToolchain, other tools (ar) by their real bytes. */
export class ProgramDigests {
  private readonly memo = new Map<string, Promise<string>>();

  constructor(private readonly options: { memoFile?: string } = {}) {}

  digest(absPath: string): Promise<string> {
    let p = this.memo.get(absPath);
    if (!p) {
      p = this.compute(absPath);
      this.memo.set(absPath, p);
    }
    return p;
  }

  private async compute(absPath: string): Promise<string> {
    if (isCompilerDriver(absPath)) {
      return (await detectToolchain(absPath, { memoFile: this.options.memoFile })).digest;
    }
    try {
      return "tool:" + (await digestOfFile(realpathSync(absPath))).hash;
    } catch (err) {
      throw new OrionError(`cannot read program ${absPath}`, { cause: err });
    }
  }
}
