// The build events of the Contract (DESIGN.md): what `orion build --json` prints, one per line.

export type ActionKind = "compile" | "archive" | "link" | "depgen" | "configure" | "script" | "other";

export type ActionEventState =
  | "queued"
  | "started"
  | "cached"
  | "finished"
  | "failed"
  | "retry"
  | "cloned"
  | "cancelled";

export interface Phases {
  queueMs: number;
  inputFetchMs: number;
  executeMs: number;
  uploadMs: number;
}

interface EventBase {
  seq: number;
  buildId: string;
}

export interface BuildStartEvent extends EventBase {
  type: "build-start";
  actions: number;
  hostSteps: number;
  /**
   * make drives the build: the counts are a prediction (the last build of this tree; 0 the first time) — the actions
   * are known only as make issues them, and the summary has the real ones.
   */
  predicted?: boolean;
}

export interface HostStepEvent extends EventBase {
  type: "host-step";
  id: string;
  cmd: string;
  cwd: string;
  state: "started" | "finished" | "failed";
  ms?: number;
  /** On "finished": the step did not run; its outputs came from the step cache. */
  cached?: boolean;
}

export interface ActionEvent extends EventBase {
  type: "action";
  id: string;
  kind: ActionKind;
  label: string;
  state: ActionEventState;
  node?: string;
  attempt: number;
  ms?: number;
  phases?: Phases;
  /** For failed actions: why, in one line (the diagnostics travel separately). */
  error?: string;
  /** For failed actions: the infrastructure failed (retries exhausted, no node can run it), not the tool — exit code 3. */
  infra?: boolean;
}

export interface Summary {
  actions: number;
  executed: number;
  cacheHits: number;
  failed: number;
  skipped: number;
  hostSteps: number;
  /** Host steps restored from the step cache instead of run (counted in hostSteps too). */
  hostStepsCached: number;
  attempts: number;
  clones: number;
  wallMs: number;
  nodes: Record<string, number>;
  /** The whole build was restored from the last build of the same tree, make not run (src/drive/replay.ts). */
  replayed?: boolean;
}

export interface SummaryEvent extends EventBase, Summary {
  type: "summary";
}

/**
 * Not part of the printed stream: the head asks the build's client to upload these blobs again (its
 * store lost them to rot, found when a node read them); the action that needed them waits, then re-runs.
 * Its seq repeats the last event's, and it is never replayed to a late watcher.
 */
export interface MissingBlobsEvent extends EventBase {
  type: "missing-blobs";
  /** digestKey of each blob. */
  digests: string[];
}

export type BuildEvent = BuildStartEvent | HostStepEvent | ActionEvent | SummaryEvent | MissingBlobsEvent;

/** Distributes Omit over the union, so callers build events without seq/buildId. */
export type EventBody = BuildEvent extends infer E ? (E extends BuildEvent ? Omit<E, "seq" | "buildId"> : never) : never;
