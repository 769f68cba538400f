// Finding the programs a build runs and naming each by a digest: compilers by their toolchain, other tools by their bytes.
import { realpathSync } from "node:fs";
import { isCompilerDriver } from "../compile/index.js";
import { detectToolchain } from "./toolchain.js";
import { digestOfFile, OrionError } from "../core/index.js";

/** Digests the programs of a build once per process: compilers through detectToolchain, other tools (ar) by their real bytes. */
export class ProgramDigests {
  private readonly memo = new Map<string, Promise<string>>();

  constructor(private readonly options: { memoFile?: string | readonly string[] } = {}) {}

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
