// Runs one host step in the real tree: restored from the step cache when every input it read last time
// is unchanged, else run — under strace when the machine has it, so that a successful run can be cached.
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Logger, errorMessage } from "../core/index.js";
import { findProgram } from "../core/programs.js";
import { parseDigestKey } from "../core/digest.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache } from "../merkle/index.js";
import { runHostStep } from "./host-step.js";
import { PARENT_MAKE_VARS, RUNS_MAKE } from "../../dag-extract/make.js";
import { parseTrace, TRACED_SYSCALLS } from "./trace.js";
import { Fingerprinter, recordStep, restoreStep, type StepCache, stepKey, type TreeState } from "./step-cache.js";

export interface HostStepRunnerOptions {
  store: BlobStore;
  statCache: StatCache;
  /** Absent with --no-cache: steps run untraced and nothing is stored. */
  cache?: StepCache;
  env: NodeJS.ProcessEnv;
  /** Tools a sub-make may run at once (the step runs alone: every core is its). */
  jobs: number;
  logger: Logger;
  diagnostics(chunk: string | Uint8Array): void;
  signal: AbortSignal;
}

export interface HostStep {
  /** argv to run (["/bin/sh", "-c", line] for a shell line). */
  argv: string[];
  /** Absolute working directory. */
  cwd: string;
  /** It only prints (dag-extract's printsOnly): run as it is, nothing to cache. */
  printsOnly?: boolean;
}

export interface HostStepOutcome {
  ok: boolean;
  restored: boolean;
  exitCode?: number;
  signal?: string;
  canceled: boolean;
}

export class HostStepRunner {
  private fingerprints?: Fingerprinter;
  /** The strace to trace with: undefined until the first step that could be cached asks, null when there is none that works. */
  private strace: string | null | undefined;

  constructor(private readonly o: HostStepRunnerOptions) {}

  async run(step: HostStep, before: TreeState): Promise<HostStepOutcome> {
    const log = this.o.logger;
    const fp = this.fingerprintsFor(before);
    // A parent make's variables (orion run from a make) are not the step's: it gets make's defaults, and -jN below.
    const env: NodeJS.ProcessEnv = { ...this.o.env };
    for (const name of PARENT_MAKE_VARS) delete env[name];
    let key = this.o.cache && !step.printsOnly ? stepKey(before.root, path.relative(before.root, step.cwd), step.argv, env) : undefined;
    if (key && this.o.cache) {
      const found = this.o.cache.find(key, fp);
      const hit = "entry" in found ? found.entry : undefined;
      if ("changed" in found && found.changed.length) log.debug({ cwd: step.cwd, argv: step.argv, changed: found.changed }, "host step runs: inputs changed since it was cached");
      let restored: "restored" | "missing" | "failed" = "missing";
      if (hit) {
        try {
          restored = await restoreStep(hit, before.root, this.o.store, this.o.statCache);
        } catch (err) {
          // Half restored: the tree is no longer the one fingerprinted, so this run is not recorded.
          log.warn({ cwd: step.cwd, err: errorMessage(err) }, "could not restore a host step; running it");
          restored = "failed";
          key = undefined;
        }
        fp.forgetOutside();
      }
      if (hit && restored === "restored") {
        if (hit.log) {
          const bytes = await this.o.store.get(parseDigestKey(hit.log));
          if (bytes?.length) this.o.diagnostics(bytes);
        }
        log.debug({ cwd: step.cwd, argv: step.argv, outputs: hit.outputs.length, savedMs: hit.ms }, "host step restored from the step cache");
        return { ok: true, restored: true, canceled: false };
      }
    }

    // A step that starts a make gets the build's -j (nothing else runs beside a host step). Not in the key: how many
    // jobs a make may run does not change what it makes.
    if (RUNS_MAKE.test(step.argv.join(" ")) && this.o.jobs > 1) env.MAKEFLAGS = `-j${this.o.jobs}`;
    if (key && this.strace === undefined) this.strace = await workingStrace(this.o.env, log);
    const traceFile = key && this.strace ? path.join(tmpdir(), `orion-step-${process.pid}-${randomBytes(6).toString("hex")}.trace`) : undefined;
    const argv = traceFile
      ? [this.strace!, ...straceArgs(traceFile), ...step.argv]
      : step.argv;
    const started = performance.now();
    // Its own process group, stopped whole on an interrupt, the files it created removed (see host-step.ts).
    // A prints-only step runs beside actions, whose new outputs its (older) tree does not list: nothing to remove there.
    const r = await runHostStep(argv, { cwd: step.cwd, root: before.root, env, signal: this.o.signal, existed: before.files, removeOnCancel: !step.printsOnly });
    const ms = performance.now() - started;
    if (r.output.length) this.o.diagnostics(r.output);
    const ok = r.exitCode === 0 && !r.cancelled;
    try {
      if (ok && traceFile && key && this.o.cache) {
        const trace = parseTrace(readFileSync(traceFile, "utf8"), step.cwd);
        if (trace.untraceable) log.info({ cwd: step.cwd, argv: step.argv, why: trace.untraceable }, "host step not cached: its trace is incomplete");
        else {
          const recorded = await recordStep(trace.accesses, fp, { store: this.o.store, statCache: this.o.statCache, ignore: (p) => p === traceFile }, { log: r.output, ms });
          if ("uncacheable" in recorded) log.info({ cwd: step.cwd, argv: step.argv, why: recorded.uncacheable }, "host step not cached");
          else {
            this.o.cache.put(key, recorded.entry);
            log.debug({ cwd: step.cwd, inputs: recorded.entry.inputs.length, outputs: recorded.entry.outputs.length, ms: Math.round(ms) }, "host step cached");
          }
        }
      }
    } catch (err) {
      log.warn({ cwd: step.cwd, err: errorMessage(err) }, "could not cache a host step");
    } finally {
      if (traceFile) rmSync(traceFile, { force: true });
      // The step may have changed something outside the project too: look again next time.
      fp.forgetOutside();
    }
    return { ok, restored: false, exitCode: r.exitCode, signal: r.signal, canceled: r.cancelled };
  }

  private fingerprintsFor(tree: TreeState): Fingerprinter {
    if (!this.fingerprints) this.fingerprints = new Fingerprinter(tree);
    else this.fingerprints.setTree(tree);
    return this.fingerprints;
  }
}


/** The strace flags every traced step uses (seccomp-bpf needs strace >= 5.3 and a kernel that allows it). */
function straceArgs(traceFile: string): string[] {
  return ["-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-s", "65535", "-e", `trace=${TRACED_SYSCALLS.join(",")}`, "-o", traceFile, "--"];
}

/**
 * strace, when it is installed and can trace here with our flags (an old strace, or ptrace forbidden in a container,
 * would fail every step): one probe run per build. null, said once in the log, when not.
 */
async function workingStrace(env: NodeJS.ProcessEnv, log: Logger): Promise<string | null> {
  const strace = findProgram("strace", process.cwd(), env);
  if (!strace) {
    log.info("strace is not installed: host steps run every time (no whole-step caching)");
    return null;
  }
  const { execa } = await import("execa");
  const probe = await execa(strace, [...straceArgs("/dev/null"), "/bin/true"], { reject: false, stdin: "ignore" });
  if (probe.exitCode === 0) return strace;
  log.info({ strace, stderr: String(probe.stderr).slice(0, 300) }, "strace cannot trace here: host steps run every time (no whole-step caching)");
  return null;
}
