// The recipe lines a make-driven build runs itself: through the whole-step cache, against the live tree.
import type { HostStepRunner } from "../steps/host-runner.js";
import type { StepLines } from "./build-calls.js";

/** StepLines over a HostStepRunner, for the project at `root` (what steps are fingerprinted and restored against). */
export function stepLines(runner: HostStepRunner, root: string, signal?: AbortSignal): StepLines {
  return {
    async run(step) {
      const r = await runner.runLine({ argv: step.argv, cwd: step.cwd, root, env: step.env, signal });
      // A step stopped by a signal: the shell would say 128 + its number; make only needs "failed".
      const exitCode = r.ok ? 0 : (r.exitCode ?? 1) || 1;
      return { exitCode, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr), restored: r.restored };
    },
  };
}
