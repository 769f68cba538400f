// The client's host-step loop: leases the steps the head hands back, runs each in the real tree once the outputs it
// depends on are written (through the whole-step cache when there is one), and reports it with the tree as it left it.
import { posix } from "node:path";
import { errorMessage, isDiskFull, type Logger } from "../core/index.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import type { ContextUpload, HostStepLease } from "../head/api.js";
import type { ClientBuildOptions } from "./build-options.js";
import type { BuildRun } from "./build-run.js";
import { hashContext } from "./hash-context.js";
import type { OutputWriter } from "./outputs.js";

type HostStepRunner = import("../steps/host-runner.js").HostStepRunner;

/** Every action ordered before `id` in the graph (its dependencies, transitively) that writes outputs into the tree: all but host steps. */
export function orderedBefore(id: string, byId: ReadonlyMap<string, Pick<GraphAction, "deps" | "host">>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const stack = [...(byId.get(id)?.deps ?? [])];
  while (stack.length) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    const a = byId.get(d);
    if (!a) continue;
    if (!a.host) out.push(d);
    // Through host steps too: what they waited for is written already, so those waits cost a map look-up.
    stack.push(...a.deps);
  }
  return out;
}

export interface HostStepLoopOptions {
  o: ClientBuildOptions;
  run: BuildRun;
  writer: OutputWriter;
  byId: ReadonlyMap<string, GraphAction>;
  /** The blobs this build saw the head's store hold (see hashContext). */
  known: Set<string>;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/** Runs host steps until the build's summary came or its watch failed. */
export async function runHostSteps(l: HostStepLoopOptions): Promise<void> {
  const steps = new HostSteps(l);
  while (!l.run.summary && !l.run.watchFailed) {
    const leases = await l.o.head.leaseHostSteps(l.run.buildId, 1, 250);
    for (const lease of leases) await steps.runLease(lease);
  }
}

/** How a step went, as far as it got: what the head is told. */
interface StepOutcome {
  ok: boolean;
  /** From the step cache, not run. */
  restored: boolean;
  /** The tree as the step left it, uploaded (not for steps that only print). */
  upload?: ContextUpload;
}

/** Where one step's time goes on the client (debug log): waiting for outputs, hashing, the step, the re-hash and upload. */
interface StepTimes {
  start: number;
  flushed: number;
  hashed: number;
  ran: number;
  uploaded: number;
}

class HostSteps {
  private runner: HostStepRunner | undefined;
  /** Steps that only print (make's messages): they wait for nothing and change nothing. */
  private readonly printsOnly: Set<string>;

  constructor(private readonly l: HostStepLoopOptions) {
    this.printsOnly = new Set(l.o.graph.commands.filter((c) => c.printsOnly).map((c) => c.id));
  }

  /** Runs one leased step and reports it; a step that fails or cannot run is the build's failure, not the loop's. */
  async runLease(lease: HostStepLease): Promise<void> {
    const { o, run, log } = this.l;
    const t: StepTimes = { start: performance.now(), flushed: 0, hashed: 0, ran: 0, uploaded: 0 };
    const outcome: StepOutcome = { ok: false, restored: false };
    try {
      await this.runStep(lease, t, outcome);
    } catch (err) {
      run.hostFailure = true;
      if (isDiskFull(err)) run.onDiskFull(err);
      else o.diagnostics(`orion: host step could not run: ${errorMessage(err)}\n`);
    }
    const { ok, restored, upload } = outcome;
    const reportStart = performance.now();
    await o.head.reportHostStep(run.buildId, lease.leaseId, ok, upload, restored);
    const ms = (a: number, b: number) => (a && b ? Math.round(b - a) : undefined);
    log.debug(
      {
        action: lease.actionId,
        restored,
        flushMs: ms(t.start, t.flushed),
        hashMs: ms(t.flushed, t.hashed),
        runMs: ms(t.hashed, t.ran),
        uploadMs: ms(t.ran, t.uploaded),
        reportMs: Math.round(performance.now() - reportStart),
        root: upload?.root.hash.slice(0, 12),
      },
      "host step done",
    );
  }

  /** Fills in `outcome` as the step goes, so a re-hash that fails after the step still reports how the step ended. */
  private async runStep(lease: HostStepLease, t: StepTimes, outcome: StepOutcome): Promise<void> {
    const { o, run, writer, byId, known } = this.l;
    const root = o.graph.root;
    const quiet = this.printsOnly.has(lease.actionId);
    if (!quiet) {
      // The lease and the events travel apart: the lease may come before the events of the actions
      // ordered before this step. Wait until each of those has its outputs written, not just reported.
      await writer.whenWritten(orderedBefore(lease.actionId, byId));
      await writer.flush();
    }
    t.flushed = performance.now();
    // What the writer had queued (and, after the flush, written) before this hash: later writes are newer than it.
    const queuedNow = writer.queued;
    if (!quiet && queuedNow !== run.treeAtWrites) {
      // Outputs written since the last hash: the step must be judged against the tree as it is.
      run.tree = (await hashContext(root, o, known, false)).tree;
      run.treeAtWrites = queuedNow;
    }
    t.hashed = performance.now();
    const runner = await this.hostRunner();
    const tree = run.tree;
    const r = await runner.run(
      { argv: lease.argv, cwd: posix.join(root, lease.cwd), printsOnly: quiet },
      { root, files: tree.files, symlinks: tree.symlinks, directories: [...tree.dirDigests.keys()] },
    );
    outcome.ok = r.ok;
    outcome.restored = r.restored;
    t.ran = performance.now();
    if (!r.ok) run.hostFailure = true;
    if (!r.ok && !r.canceled) o.diagnostics(`orion: host step failed (exit ${r.exitCode ?? r.signal}): ${byId.get(lease.actionId)?.shell ?? lease.argv.join(" ")}\n`);
    if (quiet) return;
    // The step may have written anything in the tree: the next actions see it as it is now.
    const after = await hashContext(root, o, known);
    outcome.upload = after.upload;
    run.tree = after.tree;
    run.treeAtWrites = queuedNow;
    t.uploaded = performance.now();
  }

  /** Host steps are rare: their runner (and its module) is loaded when the first one runs. */
  private async hostRunner(): Promise<HostStepRunner> {
    if (this.runner) return this.runner;
    const { o, run, env, log } = this.l;
    const { HostStepRunner } = await import("../steps/host-runner.js");
    this.runner = new HostStepRunner({
      store: o.store,
      statCache: o.statCache,
      cache: o.noCache ? undefined : o.stepCache,
      env,
      jobs: o.hostJobs ?? 1,
      logger: log,
      diagnostics: o.diagnostics,
      signal: run.hostAbort.signal,
    });
    return this.runner;
  }
}
