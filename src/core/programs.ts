// Finding programs as execvp does: used by `orion build` (argv[0] of each action) and `orion cc` (the real compiler).
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

export function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** A name with a slash resolves against cwd, a bare name along PATH; undefined when nothing executable is there. */
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
