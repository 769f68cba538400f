// The build events of a make-driven build: each tool call the shims hand in is an `action`, each recipe line run
// through the step cache a `host-step`, and the summary adds them up — the Contract's stream, built as calls arrive
// (make decides the order, so the total is not known at the start).
import { randomUUID } from "node:crypto";
import type { ActionEvent, ActionKind, BuildEvent, Summary } from "../scheduler/index.js";

/** The node name of calls run by this process (the embedded default). */
export const LOCAL_NODE = "local";

export class DriveEvents {
  readonly buildId = randomUUID();
  private seq = 0;
  private nextId = 0;
  private readonly started = performance.now();
  readonly counts: Omit<Summary, "wallMs"> = {
    actions: 0,
    executed: 0,
    cacheHits: 0,
    failed: 0,
    skipped: 0,
    hostSteps: 0,
    hostStepsCached: 0,
    attempts: 0,
    clones: 0,
    nodes: {},
  };
  /** Calls that failed because Orion could not run them (a farm gone with ORION_NO_FALLBACK): exit 3, not 1. */
  infraFailures = 0;

  constructor(private readonly emit: (e: BuildEvent) => void) {}

  /** `predicted`: how many actions the last build of this tree had (0 when unknown). */
  start(predicted: { actions: number; hostSteps: number }): void {
    this.send({ type: "build-start", ...predicted, predicted: true });
  }

  /** A tool call began: its id, for the event that ends it. */
  actionStarted(kind: ActionKind, label: string): string {
    const id = `c${++this.nextId}`;
    this.counts.actions++;
    this.counts.attempts++;
    this.send({ type: "action", id, kind, label, state: "started", attempt: 1 } as Omit<ActionEvent, "seq" | "buildId">);
    return id;
  }

  actionEnded(
    id: string,
    kind: ActionKind,
    label: string,
    how: { state: "cached" | "finished" | "failed" | "cancelled"; node?: string; ms: number; error?: string; infra?: boolean },
  ): void {
    const c = this.counts;
    if (how.state === "cached") c.cacheHits++;
    else if (how.state === "cancelled") c.skipped++;
    else if (how.state === "failed") c.failed++;
    else {
      c.executed++;
      const node = how.node ?? LOCAL_NODE;
      c.nodes[node] = (c.nodes[node] ?? 0) + 1;
    }
    if (how.infra) this.infraFailures++;
    const e: Omit<ActionEvent, "seq" | "buildId"> = { type: "action", id, kind, label, state: how.state, attempt: 1, ms: Math.round(how.ms) };
    if (how.node) e.node = how.node;
    if (how.error) e.error = how.error;
    if (how.infra) e.infra = true;
    this.send(e);
  }

  hostStep(id: string, cmd: string, cwd: string, state: "started" | "finished" | "failed", extra: { ms?: number; cached?: boolean } = {}): void {
    if (state === "started") this.counts.hostSteps++;
    else if (extra.cached) this.counts.hostStepsCached++;
    this.send({ type: "host-step", id, cmd, cwd, state, ...extra });
  }

  stepId(): string {
    return `s${++this.nextId}`;
  }

  /** The last event: every action counted once. `replayed`: the whole build was restored, make not run. */
  finish(replayed = false): Summary {
    const summary: Summary = { ...this.counts, nodes: { ...this.counts.nodes }, wallMs: Math.round(performance.now() - this.started), ...(replayed ? { replayed } : {}) };
    this.send({ type: "summary", ...summary });
    return summary;
  }

  private send(e: Record<string, unknown>): void {
    this.emit({ ...e, seq: ++this.seq, buildId: this.buildId } as unknown as BuildEvent);
  }
}
