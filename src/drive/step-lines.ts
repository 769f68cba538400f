// The recipe lines a make-driven build runs itself: through the whole-step cache, against the live tree. The step cache
// and its runner open on the first such line, or earlier when the build asks (`prewarm`, while make starts): a build
// whose lines are all tool calls or plain shell need never open them.
import type { BlobStore } from "../cas/index.js";
import type { Logger } from "../core/index.js";
import type { StatCache } from "../merkle/index.js";
import type { StepLines } from "./build-calls.js";

export interface StepLinesOptions {
  cacheDir: string;
  /** The blob store and stat cache the build's tool calls use (opened on first use). */
  stores(): { store: BlobStore; statCache: StatCache };
  /** The project: what steps are fingerprinted and restored against. */
  root: string;
  jobs: number;
  /** The environment steps run with (the build's). */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  signal: AbortSignal;
}

export function openStepLines(o: StepLinesOptions): { lines: StepLines; close(): void } {
  let opened: Promise<{ lines: StepLines; close(): void }> | undefined;
  const open = async () => {
    const { openCacheDir } = await import("../store/index.js");
    const { HostStepRunner } = await import("../steps/host-runner.js");
    const stepCache = openCacheDir(o.cacheDir).stepCache();
    const { store, statCache } = o.stores();
    const runner = new HostStepRunner({ store, statCache, cache: stepCache, env: o.env, jobs: o.jobs, logger: o.logger, diagnostics: () => undefined, signal: o.signal });
    const lines: StepLines = {
      prewarm: () => runner.prewarm(),
      async run(step) {
        const r = await runner.runLine({ argv: step.argv, cwd: step.cwd, root: o.root, env: step.env, signal: o.signal });
        // A step stopped by a signal: the shell would say 128 + its number; make only needs "failed".
        const exitCode = r.ok ? 0 : (r.exitCode ?? 1) || 1;
        return { exitCode, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr), restored: r.restored, touched: r.touched };
      },
    };
    return { lines, close: () => stepCache.close() };
  };
  return {
    lines: {
      run: async (step) => (await (opened ??= open())).lines.run(step),
      // A failure here is the first line's to report (it opens again and fails the same way).
      prewarm: () => void (opened ??= open()).then((s) => s.lines.prewarm?.()).catch(() => (opened = undefined)),
    },
    close: () => void opened?.then((s) => s.close()),
  };
}
