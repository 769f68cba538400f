// The scheduler core: one state machine for every build's action DAG — readiness by inputs,
// critical-path ordering, leases pulled by workers, retries, and the Contract's event stream.
// It knows nothing of transports, caches or processes: the head decides what a ready action
// needs (a cache hit, or a lease), workers pull leases; time and ids are injected.
import type { Clock, IdGenerator } from "../core/clock.js";
import { criticalPathPriorities } from "./critical-path.js";
import type { ActionKind, BuildEvent, EventBody, Phases, Summary } from "./events.js";
import { PriorityQueue } from "./heap.js";

export interface TaskSpec {
  id: string;
  deps: readonly string[];
  kind: ActionKind;
  label: string;
  /** Runs on the client in the real tree (a host step), not on a node. */
  host: boolean;
  /** Expected duration, for critical-path ordering. */
  estimateMs: number;
  /** For host-step events: the command line and its directory. */
  cmd?: string;
  cwd?: string;
}

export type TaskState = "waiting" | "ready" | "queued" | "running" | "backoff" | "done";
export type TaskOutcome = "cached" | "finished" | "failed" | "skipped";

/** A task as the head and workers see it. */
export interface Task<P> {
  readonly buildId: string;
  readonly spec: TaskSpec;
  state: TaskState;
  outcome?: TaskOutcome;
  /** Attempts started so far. */
  attempt: number;
  payload?: P;
  readonly priority: number;
  /** Ids of direct dependents (for the head's bookkeeping). */
  readonly dependents: readonly string[];
}

export interface Lease<P> {
  leaseId: string;
  task: Task<P>;
  attempt: number;
  worker: string;
}

export interface Worker<P> {
  name: string;
  accepts(task: Task<P>): boolean;
  /**
   * Input bytes this worker already holds for a placement key (an input root); 0 when none. Among queued
   * tasks of equal priority, the worker is handed the one whose inputs it holds most of (DESIGN.md,
   * Scheduler: "all else equal, the most input bytes already local"). Never outranks critical-path order.
   */
  heldBytes?(key: string): number;
}

export type CompletionOutcome =
  | { status: "ok"; node?: string; phases?: Partial<Phases>; /** A host step restored from the step cache, not run. */ restored?: boolean }
  /** The tool's own failure (a compile error): reported, never retried. */
  | { status: "failed"; error?: string; node?: string; phases?: Partial<Phases> }
  /** The infrastructure failed (node lost, sandbox error, timeout): retried within the budget. */
  | { status: "infra"; error: string; node?: string };

export interface BuildOptions {
  /** Extra attempts after an infrastructure failure. */
  retries: number;
  /** Stop starting new work after the first failure (make without -k). */
  failFast: boolean;
  onEvent(event: BuildEvent): void;
}

export interface SchedulerOptions<P> {
  clock: Clock;
  ids: IdGenerator;
  /** Called once each time a task becomes ready; the head answers with markCached, enqueue or fail. */
  onReady(task: Task<P>): void;
  /** Called whenever leasable work may have appeared (for waiting workers). */
  onWork?(): void;
  /** The placement key of a task about to be queued (the input root its inputs live under); undefined = none. */
  placementKey?(task: Task<P>): string | undefined;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
}

interface TaskRecord<P> extends Task<P> {
  remainingDeps: number;
  queuedAt?: number;
  startedAt?: number;
  lease?: Lease<P>;
  dependents: string[];
  /** Set while queued: the key of the `byKey` queue that also holds this task. */
  placementKey?: string;
}

interface BuildRecord<P> {
  id: string;
  options: BuildOptions;
  tasks: Map<string, TaskRecord<P>>;
  seq: number;
  startedAt: number;
  /** Tasks not yet done. */
  open: number;
  failed: boolean;
  cancelled: boolean;
  summary: Summary;
  done: Promise<Summary>;
  resolve(s: Summary): void;
}

export class Scheduler<P = unknown> {
  private readonly builds = new Map<string, BuildRecord<P>>();
  /** Queued tasks of every build, by priority. */
  private readonly queue = new PriorityQueue<TaskRecord<P>>();
  /**
   * The same queued tasks again, grouped by placement key (only those that have one); a key whose queue
   * empties is dropped, so the map holds as many entries as input roots have work waiting — a handful.
   */
  private readonly byKey = new Map<string, PriorityQueue<TaskRecord<P>>>();
  /** Leases in flight, by lease id. */
  private readonly leases = new Map<string, Lease<P>>();

  constructor(private readonly opts: SchedulerOptions<P>) {}

  addBuild(buildId: string, specs: readonly TaskSpec[], options: BuildOptions): Promise<Summary> {
    const prio = criticalPathPriorities(specs);
    const tasks = new Map<string, TaskRecord<P>>();
    for (const spec of specs) {
      tasks.set(spec.id, {
        buildId,
        spec,
        state: "waiting",
        attempt: 0,
        priority: prio.get(spec.id)!,
        remainingDeps: new Set(spec.deps).size,
        dependents: [],
      });
    }
    for (const t of tasks.values()) for (const d of new Set(t.spec.deps)) tasks.get(d)!.dependents.push(t.spec.id);
    let resolve!: (s: Summary) => void;
    const done = new Promise<Summary>((r) => (resolve = r));
    const actions = specs.filter((s) => !s.host).length;
    const build: BuildRecord<P> = {
      id: buildId,
      options,
      tasks,
      seq: 0,
      startedAt: this.opts.clock.now(),
      open: specs.length,
      failed: false,
      cancelled: false,
      summary: { actions, executed: 0, cacheHits: 0, failed: 0, skipped: 0, hostSteps: 0, hostStepsCached: 0, attempts: 0, clones: 0, wallMs: 0, nodes: {} },
      done,
      resolve,
    };
    this.builds.set(buildId, build);
    this.emit(build, { type: "build-start", actions, hostSteps: specs.length - actions });
    for (const t of tasks.values()) if (t.remainingDeps === 0) this.makeReady(t);
    this.maybeFinish(build);
    return done;
  }

  task(buildId: string, taskId: string): Task<P> | undefined {
    return this.builds.get(buildId)?.tasks.get(taskId);
  }

  /** The head found the task's result in the cache (or in place). */
  markCached(buildId: string, taskId: string): void {
    const t = this.expect(buildId, taskId, ["ready"]);
    if (!t) return;
    const build = this.builds.get(buildId)!;
    build.summary.cacheHits++;
    this.emitAction(build, t, "cached", {});
    this.finish(build, t, "cached");
  }

  /** The head needs the task executed: it waits for a worker's lease. */
  enqueue(buildId: string, taskId: string, payload: P): void {
    const t = this.expect(buildId, taskId, ["ready"]);
    if (!t) return;
    const build = this.builds.get(buildId)!;
    if (build.failed && build.options.failFast) return this.skip(build, t);
    t.payload = payload;
    this.queueTask(build, t);
  }

  /** The head could not prepare the task (an input missing, a toolchain no node has): it fails. */
  failReady(buildId: string, taskId: string, error: string, infra = false): void {
    const t = this.expect(buildId, taskId, ["ready"]);
    if (!t) return;
    const build = this.builds.get(buildId)!;
    this.fail(build, t, error, infra ? { infra } : {});
  }

  /** Hands a worker up to `max` queued tasks it accepts, highest priority first. */
  lease(worker: Worker<P>, max: number): Lease<P>[] {
    const out: Lease<P>[] = [];
    while (out.length < max) {
      const t = this.takeFor(worker);
      if (!t) break;
      const build = this.builds.get(t.buildId)!;
      t.attempt++;
      t.state = "running";
      t.startedAt = this.opts.clock.now();
      const lease: Lease<P> = { leaseId: this.opts.ids(), task: t, attempt: t.attempt, worker: worker.name };
      t.lease = lease;
      this.leases.set(lease.leaseId, lease);
      if (t.spec.host) {
        build.summary.hostSteps++;
        this.emit(build, { type: "host-step", id: t.spec.id, cmd: t.spec.cmd ?? t.spec.label, cwd: t.spec.cwd ?? "", state: "started" });
      } else {
        build.summary.attempts++;
        this.emitAction(build, t, "started", { node: worker.name });
      }
      out.push(lease);
    }
    return out;
  }

  /** Whether a lease is still the live one for its task (not re-queued, cancelled or reported). */
  isLive(leaseId: string): boolean {
    return this.leases.has(leaseId);
  }

  /** The queued tasks `pick` selects, by build, in one pass (the head watches for builds no node can serve). */
  queuedByBuild(pick: (t: Task<P>) => boolean): Map<string, Task<P>[]> {
    const out = new Map<string, Task<P>[]>();
    for (const t of this.queue.values()) {
      if (!pick(t)) continue;
      let list = out.get(t.buildId);
      if (!list) out.set(t.buildId, (list = []));
      list.push(t);
    }
    return out;
  }

  /**
   * Fails a build's queued tasks that `pick` selects as infrastructure failures with `error` (no node can take them):
   * under fail-fast the first fails and the rest are skipped, so the build ends with one failure to show.
   */
  failQueued(buildId: string, pick: (t: Task<P>) => boolean, error: string): number {
    const build = this.builds.get(buildId);
    if (!build) return 0;
    const gone = this.queue.remove((t) => t.buildId === buildId && pick(t));
    for (const t of gone) {
      this.unqueueByKey(t);
      if (t.state !== "queued") continue;
      if (build.failed && build.options.failFast) this.skip(build, t);
      else this.fail(build, t, error, { infra: true });
    }
    return gone.length;
  }

  /** Whether any queued task would be accepted by `worker` (for long-polling workers). */
  hasWork(worker: Worker<P>): boolean {
    return this.queue.values().some((t) => worker.accepts(t));
  }

  /** A worker reports on a lease. Unknown or stale leases are ignored (the task was re-queued or cancelled). */
  complete(leaseId: string, outcome: CompletionOutcome): Task<P> | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    this.leases.delete(leaseId);
    const t = lease.task as TaskRecord<P>;
    if (t.lease !== lease || t.state !== "running") return undefined;
    t.lease = undefined;
    const build = this.builds.get(t.buildId)!;
    const ms = this.opts.clock.now() - (t.startedAt ?? this.opts.clock.now());
    const phases = this.phases(t, outcome.status === "infra" ? undefined : outcome.phases);
    if (outcome.status === "ok") {
      if (t.spec.host) {
        if (outcome.restored) build.summary.hostStepsCached++;
        this.emit(build, { type: "host-step", id: t.spec.id, cmd: t.spec.cmd ?? t.spec.label, cwd: t.spec.cwd ?? "", state: "finished", ms, ...(outcome.restored ? { cached: true } : {}) });
      } else {
        build.summary.executed++;
        const node = outcome.node ?? lease.worker;
        build.summary.nodes[node] = (build.summary.nodes[node] ?? 0) + 1;
        this.emitAction(build, t, "finished", { node, ms, phases });
      }
      this.finish(build, t, "finished");
    } else if (outcome.status === "failed") {
      if (t.spec.host) {
        this.emit(build, { type: "host-step", id: t.spec.id, cmd: t.spec.cmd ?? t.spec.label, cwd: t.spec.cwd ?? "", state: "failed", ms });
        this.markFailed(build, t);
      } else {
        this.fail(build, t, outcome.error, { node: outcome.node ?? lease.worker, ms, phases });
      }
    } else {
      this.retryOrFail(build, t, outcome.error, outcome.node ?? lease.worker);
    }
    return t;
  }

  /** A worker was lost: every lease it held goes back to the queue (an infrastructure failure each). */
  releaseWorker(worker: string, reason: string): number {
    let n = 0;
    for (const lease of [...this.leases.values()]) {
      if (lease.worker !== worker) continue;
      this.complete(lease.leaseId, { status: "infra", error: reason, node: worker });
      n++;
    }
    return n;
  }

  /** Stops a build: queued and waiting tasks are skipped, running leases are dropped. Returns the dropped lease ids. */
  cancelBuild(buildId: string): string[] {
    const build = this.builds.get(buildId);
    if (!build) return [];
    build.cancelled = true;
    build.failed = true;
    const dropped: string[] = [];
    for (const t of build.tasks.values()) {
      if (t.state === "done") continue;
      if (t.lease) {
        dropped.push(t.lease.leaseId);
        this.leases.delete(t.lease.leaseId);
        t.lease = undefined;
        if (!t.spec.host) this.emitAction(build, t, "cancelled", {});
      }
      this.unqueue(t);
      this.skip(build, t);
    }
    return dropped;
  }

  summary(buildId: string): Summary | undefined {
    return this.builds.get(buildId)?.summary;
  }

  /** Forgets a finished build (its summary was delivered). */
  dropBuild(buildId: string): void {
    const b = this.builds.get(buildId);
    if (b && b.open === 0) this.builds.delete(buildId);
  }

  // --- internals -----------------------------------------------------------

  private expect(buildId: string, taskId: string, states: TaskState[]): TaskRecord<P> | undefined {
    const t = this.builds.get(buildId)?.tasks.get(taskId);
    if (!t || !states.includes(t.state)) return undefined;
    return t;
  }

  private makeReady(t: TaskRecord<P>): void {
    const build = this.builds.get(t.buildId)!;
    if (build.failed && build.options.failFast) return this.skip(build, t);
    t.state = "ready";
    this.opts.onReady(t);
  }

  private queueTask(build: BuildRecord<P>, t: TaskRecord<P>): void {
    t.state = "queued";
    t.queuedAt = this.opts.clock.now();
    if (!t.spec.host) this.emitAction(build, t, "queued", {});
    this.queue.push(t, t.priority);
    const key = this.opts.placementKey?.(t);
    if (key !== undefined) {
      t.placementKey = key;
      let q = this.byKey.get(key);
      if (!q) this.byKey.set(key, (q = new PriorityQueue()));
      q.push(t, t.priority);
    }
    this.opts.onWork?.();
  }

  /**
   * The queued task `worker` should run next: the best one it accepts in critical-path order — or, when
   * another input root's best task is exactly as urgent and the worker holds more of that root's bytes,
   * that one. Only the head of each key's queue is looked at: O(keys) per lease, not O(queue).
   */
  private takeFor(worker: Worker<P>): TaskRecord<P> | undefined {
    const best = this.queue.peek((x) => worker.accepts(x));
    if (!best) return undefined;
    let chosen = best;
    if (worker.heldBytes && this.byKey.size > 1) {
      let held = best.placementKey !== undefined ? worker.heldBytes(best.placementKey) : 0;
      for (const [key, q] of this.byKey) {
        if (key === best.placementKey) continue;
        const top = q.peek();
        if (!top || top.priority !== best.priority || !worker.accepts(top)) continue;
        const h = worker.heldBytes(key);
        if (h > held) {
          chosen = top;
          held = h;
        }
      }
    }
    this.unqueue(chosen);
    return chosen;
  }

  private unqueue(t: TaskRecord<P>): void {
    this.queue.delete(t);
    this.unqueueByKey(t);
  }

  private unqueueByKey(t: TaskRecord<P>): void {
    const key = t.placementKey;
    if (key === undefined) return;
    t.placementKey = undefined;
    const q = this.byKey.get(key);
    if (q?.delete(t) && q.size === 0) this.byKey.delete(key);
  }

  private retryOrFail(build: BuildRecord<P>, t: TaskRecord<P>, error: string, node: string): void {
    if (t.spec.host || t.attempt > build.options.retries || build.cancelled) {
      return this.fail(build, t, error, build.cancelled ? { node } : { node, infra: true });
    }
    this.emitAction(build, t, "retry", { node, error });
    t.state = "backoff";
    const base = this.opts.backoffBaseMs ?? 100;
    const cap = this.opts.backoffMaxMs ?? 5_000;
    const delay = Math.floor((this.opts.random ?? Math.random)() * Math.min(cap, base * 2 ** (t.attempt - 1)));
    this.opts.clock.setTimeout(() => {
      if (t.state !== "backoff") return;
      if (build.failed && build.options.failFast) return this.skip(build, t);
      this.queueTask(build, t);
    }, delay);
  }

  private fail(build: BuildRecord<P>, t: TaskRecord<P>, error?: string, extra: { node?: string; ms?: number; phases?: Phases; infra?: boolean } = {}): void {
    if (t.spec.host) {
      this.emit(build, { type: "host-step", id: t.spec.id, cmd: t.spec.cmd ?? t.spec.label, cwd: t.spec.cwd ?? "", state: "failed" });
    } else {
      this.emitAction(build, t, "failed", { ...extra, error });
    }
    this.markFailed(build, t);
  }

  private markFailed(build: BuildRecord<P>, t: TaskRecord<P>): void {
    if (!t.spec.host) build.summary.failed++;
    build.failed = true;
    this.settle(build, t, "failed");
    // Dependents can never run; with fail-fast nothing new starts at all.
    const stack = [...t.dependents];
    while (stack.length) {
      const d = build.tasks.get(stack.pop()!)!;
      if (d.state === "done") continue;
      this.skip(build, d);
      stack.push(...d.dependents);
    }
    if (build.options.failFast) {
      for (const q of this.queue.remove((x) => x.buildId === build.id)) {
        this.unqueueByKey(q);
        this.skip(build, q);
      }
      for (const w of build.tasks.values()) if (w.state === "waiting" || w.state === "backoff") this.skip(build, w);
    }
    this.maybeFinish(build);
  }

  private skip(build: BuildRecord<P>, t: TaskRecord<P>): void {
    if (t.state === "done") return;
    if (!t.spec.host) build.summary.skipped++;
    this.settle(build, t, "skipped");
    this.maybeFinish(build);
  }

  private finish(build: BuildRecord<P>, t: TaskRecord<P>, outcome: TaskOutcome): void {
    this.settle(build, t, outcome);
    for (const id of t.dependents) {
      const d = build.tasks.get(id)!;
      if (d.state !== "waiting") continue;
      if (--d.remainingDeps === 0) this.makeReady(d);
    }
    this.maybeFinish(build);
  }

  private settle(build: BuildRecord<P>, t: TaskRecord<P>, outcome: TaskOutcome): void {
    t.state = "done";
    t.outcome = outcome;
    build.open--;
  }

  private maybeFinish(build: BuildRecord<P>): void {
    if (build.open !== 0 || build.summary.wallMs !== 0 || !this.builds.has(build.id)) return;
    build.summary.wallMs = Math.max(1, this.opts.clock.now() - build.startedAt);
    const summary = { ...build.summary, nodes: { ...build.summary.nodes } };
    this.emit(build, { type: "summary", ...summary });
    build.resolve(summary);
  }

  private phases(t: TaskRecord<P>, reported?: Partial<Phases>): Phases {
    const queueMs = t.queuedAt !== undefined && t.startedAt !== undefined ? t.startedAt - t.queuedAt : 0;
    return {
      queueMs,
      inputFetchMs: reported?.inputFetchMs ?? 0,
      executeMs: reported?.executeMs ?? 0,
      uploadMs: reported?.uploadMs ?? 0,
    };
  }

  private emitAction(
    build: BuildRecord<P>,
    t: TaskRecord<P>,
    state: "queued" | "started" | "cached" | "finished" | "failed" | "retry" | "cancelled",
    extra: { node?: string; ms?: number; phases?: Phases; error?: string; infra?: boolean },
  ): void {
    this.emit(build, {
      type: "action",
      id: t.spec.id,
      kind: t.spec.kind,
      label: t.spec.label,
      state,
      attempt: Math.max(1, t.attempt),
      ...extra,
    });
  }

  private emit(build: BuildRecord<P>, body: EventBody): void {
    const event = { ...body, seq: ++build.seq, buildId: build.id } as BuildEvent;
    build.options.onEvent(event);
  }
}
