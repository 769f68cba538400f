// The scheduler core with a fake clock: readiness, critical-path order, leases, retries, failure, and the summary invariant.
import { describe, expect, it } from "vitest";
import { FakeClock, sequentialIds } from "../core/index.js";
import type { BuildEvent, Summary } from "./events.js";
import { Scheduler, type Task, type TaskSpec, type Worker } from "./scheduler.js";
import { criticalPathPriorities } from "./critical-path.js";

function spec(id: string, deps: string[] = [], extra: Partial<TaskSpec> = {}): TaskSpec {
  return { id, deps, kind: "compile", label: `CC ${id}`, host: false, estimateMs: 100, ...extra };
}

function setup(options: { cacheHits?: Set<string>; retries?: number; failFast?: boolean } = {}) {
  const clock = new FakeClock();
  const events: BuildEvent[] = [];
  const sched: Scheduler<string> = new Scheduler<string>({
    clock,
    ids: sequentialIds("lease"),
    random: () => 1,
    onReady(task: Task<string>) {
      if (options.cacheHits?.has(task.spec.id)) sched.markCached(task.buildId, task.spec.id);
      else sched.enqueue(task.buildId, task.spec.id, `payload-${task.spec.id}`);
    },
  });
  const worker: Worker<string> = { name: "n1", accepts: (t) => !t.spec.host };
  const start = (specs: TaskSpec[]) =>
    sched.addBuild("b1", specs, { retries: options.retries ?? 0, failFast: options.failFast ?? true, onEvent: (e) => events.push(e) });
  return { clock, events, sched, worker, start };
}

function checkInvariant(s: Summary) {
  expect(s.actions).toBe(s.executed + s.cacheHits + s.failed + s.skipped);
}

describe("criticalPathPriorities", () => {
  it("gives each task its longest remaining path", () => {
    const p = criticalPathPriorities([
      { id: "a", deps: [], estimateMs: 10 },
      { id: "b", deps: ["a"], estimateMs: 5 },
      { id: "c", deps: ["a"], estimateMs: 50 },
      { id: "d", deps: ["b", "c"], estimateMs: 1 },
    ]);
    expect(Object.fromEntries(p)).toEqual({ a: 61, b: 6, c: 51, d: 1 });
  });
  it("rejects cycles and unknown deps", () => {
    expect(() => criticalPathPriorities([{ id: "a", deps: ["b"], estimateMs: 1 }, { id: "b", deps: ["a"], estimateMs: 1 }])).toThrow(/cycle/);
    expect(() => criticalPathPriorities([{ id: "a", deps: ["zz"], estimateMs: 1 }])).toThrow(/unknown/);
  });
});

describe("Scheduler", () => {
  it("runs a DAG in dependency order and ends with a summary", async () => {
    const { sched, worker, start, events, clock } = setup();
    const done = start([spec("a"), spec("b"), spec("link", ["a", "b"], { kind: "link" })]);
    const first = sched.lease(worker, 10);
    expect(first.map((l) => l.task.spec.id).sort()).toEqual(["a", "b"]);
    expect(sched.lease(worker, 10)).toEqual([]);
    clock.advance(50);
    sched.complete(first[0]!.leaseId, { status: "ok" });
    expect(sched.lease(worker, 10)).toEqual([]);
    sched.complete(first[1]!.leaseId, { status: "ok" });
    const [link] = sched.lease(worker, 10);
    expect(link!.task.spec.id).toBe("link");
    expect(link!.task.payload).toBe("payload-link");
    sched.complete(link!.leaseId, { status: "ok", node: "n1" });
    const summary = await done;
    expect(summary).toMatchObject({ actions: 3, executed: 3, cacheHits: 0, failed: 0, skipped: 0, attempts: 3, nodes: { n1: 3 } });
    checkInvariant(summary);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(events[0]!.type).toBe("build-start");
    expect(events.at(-1)!.type).toBe("summary");
  });

  it("orders ready work by critical path", () => {
    const { sched, worker, start } = setup();
    void start([
      spec("short"),
      spec("long", [], { estimateMs: 1000 }),
      spec("mid", [], { estimateMs: 300 }),
      spec("after-short", ["short"], { estimateMs: 5000 }),
    ]);
    expect(sched.lease(worker, 3).map((l) => l.task.spec.id)).toEqual(["short", "long", "mid"]);
  });

  it("counts cache hits and never leases them", async () => {
    const { sched, worker, start } = setup({ cacheHits: new Set(["a", "b", "link"]) });
    const summary = await start([spec("a"), spec("b"), spec("link", ["a", "b"])]);
    expect(sched.lease(worker, 10)).toEqual([]);
    expect(summary).toMatchObject({ actions: 3, executed: 0, cacheHits: 3 });
    checkInvariant(summary);
  });

  it("a tool failure skips dependents and, fail-fast, everything not started", async () => {
    const { sched, worker, start, events } = setup();
    const done = start([spec("a"), spec("b"), spec("c", ["a"]), spec("d", ["b"])]);
    const [a, b] = sched.lease(worker, 2);
    sched.complete(a!.leaseId, { status: "failed", error: "exit 1" });
    sched.complete(b!.leaseId, { status: "ok" });
    const summary = await done;
    expect(summary).toMatchObject({ actions: 4, executed: 1, failed: 1, skipped: 2 });
    checkInvariant(summary);
    expect(events.some((e) => e.type === "action" && e.state === "failed" && e.id === "a")).toBe(true);
  });

  it("retries infrastructure failures with backoff and counts the action once", async () => {
    const { sched, worker, start, clock, events } = setup({ retries: 2 });
    const done = start([spec("a")]);
    let [l] = sched.lease(worker, 1);
    sched.complete(l!.leaseId, { status: "infra", error: "node lost" });
    expect(sched.lease(worker, 1)).toEqual([]); // backing off
    clock.advance(100);
    [l] = sched.lease(worker, 1);
    expect(l!.attempt).toBe(2);
    sched.complete(l!.leaseId, { status: "ok" });
    const summary = await done;
    expect(summary).toMatchObject({ actions: 1, executed: 1, attempts: 2 });
    checkInvariant(summary);
    expect(events.filter((e) => e.type === "action" && e.state === "retry")).toHaveLength(1);
  });

  it("fails an action whose retries are exhausted", async () => {
    const { sched, worker, start, clock } = setup({ retries: 1 });
    const done = start([spec("a")]);
    for (let i = 0; i < 2; i++) {
      const [l] = sched.lease(worker, 1);
      sched.complete(l!.leaseId, { status: "infra", error: "boom" });
      clock.advance(1000);
    }
    expect(await done).toMatchObject({ failed: 1, attempts: 2 });
  });

  it("re-queues the leases of a lost worker and ignores its stale reports", async () => {
    const { sched, worker, start, clock } = setup({ retries: 3 });
    const done = start([spec("a")]);
    const [l] = sched.lease(worker, 1);
    expect(sched.releaseWorker("n1", "evicted")).toBe(1);
    expect(sched.complete(l!.leaseId, { status: "ok" })).toBeUndefined();
    clock.advance(1000);
    const [again] = sched.lease({ name: "n2", accepts: () => true }, 1);
    sched.complete(again!.leaseId, { status: "ok" });
    expect(await done).toMatchObject({ executed: 1, nodes: { n2: 1 } });
  });

  it("host steps are leased only by the worker that accepts them and are counted apart", async () => {
    const { sched, worker, start, events } = setup();
    const done = start([spec("gen", [], { host: true, kind: "script", cmd: "sh gen.sh" }), spec("a", ["gen"])]);
    expect(sched.lease(worker, 5)).toEqual([]);
    const client: Worker<string> = { name: "client", accepts: (t) => t.spec.host };
    const [h] = sched.lease(client, 5);
    sched.complete(h!.leaseId, { status: "ok" });
    const [a] = sched.lease(worker, 5);
    sched.complete(a!.leaseId, { status: "ok" });
    const summary = await done;
    expect(summary).toMatchObject({ actions: 1, executed: 1, hostSteps: 1 });
    expect(events.filter((e) => e.type === "host-step").map((e) => (e as { state: string }).state)).toEqual(["started", "finished"]);
  });

  it("cancelling a build skips what has not finished", async () => {
    const { sched, worker, start } = setup();
    const done = start([spec("a"), spec("b", ["a"])]);
    sched.lease(worker, 1);
    sched.cancelBuild("b1");
    const summary = await done;
    expect(summary).toMatchObject({ actions: 2, skipped: 2 });
    checkInvariant(summary);
  });

  it("hands a worker the equally urgent task whose input root it holds most of, never a less urgent one", () => {
    const clock = new FakeClock();
    // The payload is the task's input root; the label says which one.
    const sched: Scheduler<string> = new Scheduler<string>({
      clock,
      ids: sequentialIds("lease"),
      onReady: (t) => sched.enqueue(t.buildId, t.spec.id, t.spec.label),
      placementKey: (t) => t.payload,
    });
    const opts = { retries: 0, failFast: true, onEvent: () => {} };
    // Build 1 on root A: two leaves and one task on a longer path; build 2 (queued later) on root B.
    void sched.addBuild("b1", [spec("a1", [], { label: "A" }), spec("a2", [], { label: "A" }), spec("urgent", [], { label: "A" }), spec("after", ["urgent"], { label: "A" })], opts);
    void sched.addBuild("b2", [spec("b1", [], { label: "B" }), spec("b2", [], { label: "B" }), spec("b3", [], { label: "B" })], opts);
    const holds = (bytes: Record<string, number>): Worker<string> => ({ name: "w", accepts: () => true, heldBytes: (k) => bytes[k] ?? 0 });
    const ids = (w: Worker<string>, n: number) => sched.lease(w, n).map((l) => l.task.spec.id);
    // Critical path first, whatever the worker holds; then, among equals, root B's work for the worker holding B.
    expect(ids(holds({ B: 1 << 20 }), 3)).toEqual(["urgent", "b1", "b2"]);
    // More bytes held wins over fewer; queue order settles a tie.
    expect(ids(holds({ A: 10, B: 500 }), 1)).toEqual(["b3"]);
    expect(ids(holds({}), 1)).toEqual(["a1"]);
    // A worker that says nothing of what it holds takes the queue's order.
    expect(ids({ name: "plain", accepts: () => true }, 5)).toEqual(["a2"]);
  });

  it("an empty build finishes at once", async () => {
    const { start } = setup();
    expect(await start([])).toMatchObject({ actions: 0, executed: 0 });
  });
});
