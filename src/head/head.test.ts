// The head's membership rules on a fake clock: unique names, a restart keeping its name, eviction after the TTL, leaving.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock, Status, sequentialIds, silentLogger } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { SqliteActionCache } from "../cache/index.js";
import type { GraphAction, RegisterRequest } from "../gen/orion/v1/scheduler.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import type { BuildEvent } from "../scheduler/index.js";
import type { ContextEntry } from "./context-index.js";
import { Head, undeclaredOutputs } from "./head.js";

let dir: string;
let store: BlobStore;
let cache: SqliteActionCache;
let clock: FakeClock;
let head: Head;

const reg = (name: string, instanceId: string): RegisterRequest => ({
  name,
  slots: 2,
  toolchains: [{ name: "gcc", digest: "d-gcc", path: "/usr/bin/gcc" }],
  advertise: "",
  token: "",
  instanceId,
  sandbox: "",
});

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-head-"));
  store = createBlobStore({ dir: join(dir, "cas") });
  cache = new SqliteActionCache(join(dir, "ac.db"));
  clock = new FakeClock();
  head = new Head({ store, cache, clock, ids: sequentialIds("l"), logger: silentLogger, externalDigest: async () => undefined, heartbeatMs: 100, nodeTtlMs: 300, keepFinishedMs: 1000 });
});

afterEach(() => {
  head.close();
  cache.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Each registration's session, by node name: the node's later calls must carry it. */
const sessions = new Map<string, string>();
const session = (nodeId: string) => sessions.get(nodeId) ?? "";
const register = async (req: RegisterRequest) => {
  const r = await head.register(req);
  sessions.set(r.nodeId, r.session);
  return r;
};

const names = async () => (await head.getStatus()).nodes.map((n) => n.name).sort();

describe("Head membership", () => {
  it("makes names unique, but gives a restarted node (same instance id) its own name back", async () => {
    expect((await register(reg("box", "a"))).nodeId).toBe("box");
    expect((await register(reg("box", "b"))).nodeId).toBe("box-2");
    // "a" restarts without having left: it replaces its stale registration rather than becoming box-3.
    expect((await register(reg("box", "a"))).nodeId).toBe("box");
    expect(await names()).toEqual(["box", "box-2"]);
  });

  it("evicts a node silent past its TTL; heartbeats keep one alive; the evicted one hears NOT_FOUND", async () => {
    await register(reg("quiet", "q"));
    await register(reg("chatty", "c"));
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      await head.heartbeat({ nodeId: "chatty", session: session("chatty"), running: 1, load: 0, contextHashes: [] });
    }
    expect(await names()).toEqual(["chatty"]);
    expect((await head.getStatus()).nodes[0]!.running).toBe(1);
    await expect(head.heartbeat({ nodeId: "quiet", session: session("quiet"), running: 0, load: 0, contextHashes: [] })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(head.lease({ nodeId: "quiet", session: session("quiet"), maxActions: 1, waitMs: 0, contextHashes: [] })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    // Coming back, it registers under its old name.
    expect((await register(reg("quiet", "q"))).nodeId).toBe("quiet");
  });

  it("forgets a node that leaves, at once", async () => {
    await register(reg("n", "x"));
    await head.leave({ nodeId: "n", session: session("n") });
    expect(await names()).toEqual([]);
    expect((await register(reg("n", "y"))).nodeId).toBe("n");
  });

  it("marks a node silent past half its TTL in status", async () => {
    await register(reg("n", "x"));
    clock.advance(200);
    expect((await head.getStatus()).nodes[0]).toMatchObject({ name: "n", state: "silent", lastSeenMsAgo: 200, slots: 2, toolchains: ["gcc"] });
  });
});

/** A build of independent no-input actions ("other": they run against an empty input root) with the given toolchains. */
async function submit(toolchains: string[], noNodeTimeoutMs = 0): Promise<{ buildId: string; events: BuildEvent[] }> {
  const root = await store.put(Directory.encode({ files: [], directories: [], symlinks: [] }).finish());
  const actions: GraphAction[] = toolchains.map((toolchain, i) => ({
    id: `a${i}`, kind: "other", label: `RUN ${i}`, arguments: ["/usr/bin/tool"], cwd: "", inputs: [], outputs: [], deps: [],
    host: false, toolchain, environmentVariables: [], shell: "",
  }));
  const { buildId } = await head.submitBuild({ contextRoot: root, actions, noCache: true, retries: 2, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs }, { root, files: new Map() });
  const events: BuildEvent[] = [];
  head.watchBuild(buildId, 0, (e) => events.push(e));
  return { buildId, events };
}

/** Lets the head's preparation (real file and SQLite I/O) run until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
}

describe("Head: a node's Attach call", () => {
  it("drops a node whose call ends from its side at once: its lease goes back to the queue, long before its TTL", async () => {
    await register(reg("a", "a"));
    const ended: string[] = [];
    const detach = head.attached({ nodeId: "a", session: session("a") }, () => ended.push("a"));
    const { events } = await submit(["d-gcc"]);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    const { leases } = await head.lease({ nodeId: "a", session: session("a"), maxActions: 1, waitMs: 0, contextHashes: [] });
    expect(leases).toHaveLength(1);
    detach(); // the node died: its connection closed
    expect(events.find((e) => e.type === "action" && e.state === "retry")).toMatchObject({ node: "a", error: "node a dropped its connection" });
    expect(await names()).toEqual([]);
    expect(ended).toEqual([]); // its own end: nothing for the head to end
    await register(reg("b", "b"));
    clock.advance(100); // past the retry's backoff
    const again = await head.lease({ nodeId: "b", session: session("b"), maxActions: 1, waitMs: 0, contextHashes: [] });
    expect(again.leases.map((l) => [l.actionId, l.attempt])).toEqual([["a0", 2]]);
  });

  it("refuses a call under another session; a newer call supersedes an older one; the head ends the call of a node it drops", async () => {
    await register(reg("a", "a"));
    expect(() => head.attached({ nodeId: "a", session: "00" }, () => {})).toThrow(/not this node's session/);
    expect(() => head.attached({ nodeId: "nobody", session: "" }, () => {})).toThrow(/unknown node nobody/);
    const ended: string[] = [];
    const first = head.attached({ nodeId: "a", session: session("a") }, () => ended.push("first"));
    head.attached({ nodeId: "a", session: session("a") }, () => ended.push("second"));
    expect(ended).toEqual(["first"]);
    first(); // the superseded call's end is not the node's
    expect(await names()).toEqual(["a"]);
    await head.leave({ nodeId: "a", session: session("a") });
    expect(ended).toEqual(["first", "second"]);
  });

  it("ends a lease wait the node hung up on, handing it nothing", async () => {
    await register(reg("a", "a"));
    const abort = new AbortController();
    const waiting = head.lease({ nodeId: "a", session: session("a"), maxActions: 1, waitMs: 60_000, contextHashes: [] }, abort.signal);
    abort.abort();
    expect((await waiting).leases).toEqual([]);
    const { events } = await submit(["d-gcc"]);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    expect(events.some((e) => e.type === "action" && e.state === "started")).toBe(false);
  });
});

describe("Head: builds no node can serve", () => {
  it("keeps the actions of a build with a no-node timeout queued while no node is registered, then fails them as infra", async () => {
    const { events } = await submit(["d-gcc", "d-gcc"], 3_000);
    await until(() => events.filter((e) => e.type === "action" && e.state === "queued").length === 2);
    for (let i = 0; i < 3; i++) clock.advance(1_000);
    expect(events.some((e) => e.type === "summary")).toBe(false);
    clock.advance(1_000);
    // One failure to show; the rest of the build is skipped, as after any failure.
    const failed = events.filter((e) => e.type === "action" && e.state === "failed");
    expect(failed).toEqual([expect.objectContaining({ infra: true, error: "no live node could run the build's actions for 3 s (no node is registered with the head)" })]);
    expect(events.at(-1)).toMatchObject({ type: "summary", failed: 1, skipped: 1 });
  });

  it("hands the waiting actions to a node that registers in time", async () => {
    const { events } = await submit(["d-gcc"], 3_000);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    clock.advance(2_000);
    await register(reg("late", "l"));
    const { leases } = await head.lease({ nodeId: "late", session: session("late"), maxActions: 1, waitMs: 0, contextHashes: [] });
    expect(leases.map((l) => l.actionId)).toEqual(["a0"]);
    const result = { outputFiles: [], exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined };
    await head.reportResult({ nodeId: "late", session: session("late"), leaseId: leases[0]!.leaseId, result, error: "", depfile: "", actionError: false });
    expect(events.at(-1)).toMatchObject({ type: "summary", executed: 1, failed: 0 });
  });

  it("restarts the clock when every node is gone again, and fails then", async () => {
    await register(reg("a", "a"));
    const { events } = await submit(["d-gcc"], 2_000);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    await head.lease({ nodeId: "a", session: session("a"), maxActions: 1, waitMs: 0, contextHashes: [] });
    await head.leave({ nodeId: "a", session: session("a") });
    expect(events.some((e) => e.type === "action" && e.state === "retry")).toBe(true);
    for (let i = 0; i < 4; i++) clock.advance(1_000);
    expect(events.filter((e) => e.type === "action" && e.state === "failed")).toEqual([
      expect.objectContaining({ infra: true, error: expect.stringMatching(/^no live node could run the build's actions for 2 s/) }),
    ]);
  });

  it("without a timeout, fails an action a lost node handed back at the next check (it never passes onReady again)", async () => {
    await register(reg("a", "a"));
    const { events } = await submit(["d-gcc"]);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    await head.lease({ nodeId: "a", session: session("a"), maxActions: 1, waitMs: 0, contextHashes: [] });
    await head.leave({ nodeId: "a", session: session("a") });
    clock.advance(1_000);
    expect(events.filter((e) => e.type === "action" && e.state === "failed")).toEqual([
      expect.objectContaining({ infra: true, error: expect.stringMatching(/^no live node could run the build's actions \(no node is registered with the head\)/) }),
    ]);
  });

  it("lets a new action wait for a toolchain whose last node was lost lately, while other nodes stay", async () => {
    await register(reg("gcc-box", "g"));
    await register({ ...reg("clang-box", "c"), toolchains: [{ name: "clang", digest: "d-clang", path: "/usr/bin/clang" }] });
    await head.leave({ nodeId: "gcc-box", session: session("gcc-box") });
    const { events } = await submit(["d-gcc"], 10_000);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    expect(events.some((e) => e.type === "action" && e.state === "failed")).toBe(false);
    await register(reg("gcc-box", "g2"));
    const { leases } = await head.lease({ nodeId: "gcc-box", session: session("gcc-box"), maxActions: 1, waitMs: 0, contextHashes: [] });
    expect(leases.map((l) => l.actionId)).toEqual(["a0"]);
  });

  it("fails at once without a timeout (orion cc's one-compile builds, which then compile locally)", async () => {
    const { events } = await submit(["d-gcc"]);
    await until(() => events.some((e) => e.type === "summary"));
    expect(events.find((e) => e.type === "action" && e.state === "failed")).toMatchObject({ infra: true, error: expect.stringMatching(/no node is registered with the head/) });
  });
});

describe("Head placement", () => {
  it("fails an action no node's toolchain can run at once, as an infrastructure failure naming the nodes", async () => {
    await register(reg("gcc-box", "g"));
    const { events } = await submit(["d-clang"]);
    await until(() => events.some((e) => e.type === "summary"));
    const failed = events.find((e) => e.type === "action" && e.state === "failed");
    expect(failed).toMatchObject({ infra: true, error: expect.stringMatching(/no node has the toolchain for tool .*gcc-box \[gcc\]/) });
    expect(events.at(-1)).toMatchObject({ type: "summary", failed: 1 });
  });

  it("re-queues an evicted node's lease for another node, and forgets a finished build after keepFinishedMs", async () => {
    await register(reg("a", "a"));
    const { buildId, events } = await submit(["d-gcc"]);
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    const first = await head.lease({ nodeId: "a", session: session("a"), maxActions: 4, waitMs: 0, contextHashes: [] });
    expect(first.leases).toHaveLength(1);
    await register(reg("b", "b"));
    // "a" falls silent; "b" keeps its heartbeats up.
    for (let i = 0; i < 6; i++) {
      clock.advance(100);
      await head.heartbeat({ nodeId: "b", session: session("b"), running: 0, load: 0, contextHashes: [] });
    }
    expect(events.some((e) => e.type === "action" && e.state === "retry" && e.node === "a")).toBe(true);
    for (let i = 0; i < 3; i++) {
      clock.advance(100); // past the retry's backoff (≤ 100 ms for a first retry)
      await head.heartbeat({ nodeId: "b", session: session("b"), running: 0, load: 0, contextHashes: [] });
    }
    const second = await head.lease({ nodeId: "b", session: session("b"), maxActions: 4, waitMs: 0, contextHashes: [] });
    expect(second.leases.map((l) => [l.actionId, l.attempt])).toEqual([["a0", 2]]);
    // The stale lease's report is ignored; the live one's counts.
    const result = { outputFiles: [], exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined };
    await head.reportResult({ nodeId: "a", session: session("a"), leaseId: first.leases[0]!.leaseId, result, error: "", depfile: "", actionError: false });
    await head.reportResult({ nodeId: "b", session: session("b"), leaseId: second.leases[0]!.leaseId, result, error: "", depfile: "", actionError: false });
    expect(events.at(-1)).toMatchObject({ type: "summary", executed: 1, nodes: { b: 1 } });
    clock.advance(1_000);
    expect(() => head.watchBuild(buildId, 0, () => {})).toThrow(/unknown build/);
  });

  it("fails an action whose node reports the action's own error (action_error) at once, not retried, not infra", async () => {
    await register(reg("a", "a"));
    const { events } = await submit(["d-gcc", "d-gcc"]);
    await until(() => events.filter((e) => e.type === "action" && e.state === "queued").length === 2);
    const { leases } = await head.lease({ nodeId: "a", session: session("a"), maxActions: 4, waitMs: 0, contextHashes: [] });
    expect(leases).toHaveLength(2);
    const [own, infra] = leases;
    const error = 'output path "../../x.o" (working directory "sub") leaves the project';
    await head.reportResult({ nodeId: "a", session: session("a"), leaseId: own!.leaseId, result: undefined, error, depfile: "", actionError: true });
    await head.reportResult({ nodeId: "a", session: session("a"), leaseId: infra!.leaseId, result: undefined, error: "disk gone", depfile: "", actionError: false });
    const of = (id: string) => events.flatMap((e) => (e.type === "action" && e.id === id ? [e] : []));
    expect(of(own!.actionId).at(-1)).toMatchObject({ state: "failed", error });
    expect(of(own!.actionId).at(-1)!.infra ?? false).toBe(false);
    expect(of(own!.actionId).some((e) => e.state === "retry")).toBe(false);
    // Without the flag, the same report is an infrastructure error: another attempt.
    expect(of(infra!.actionId).some((e) => e.state === "retry")).toBe(true);
  });
});

/** Asks `read` again until `done` holds of its answer (or 5 s pass); returns the last answer. */
async function poll<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe("Head RunAction (one call per action)", () => {
  const oneAction = async (toolchain: string, outputs: string[]) => {
    const root = await store.put(Directory.encode({ files: [], directories: [], symlinks: [] }).finish());
    const action: GraphAction = {
      id: "cc", kind: "other", label: "RUN cc", arguments: ["/usr/bin/tool"], cwd: "", inputs: [], outputs, deps: [],
      host: false, toolchain, environmentVariables: [], shell: "",
    };
    return { contextRoot: root, actions: [action], noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 };
  };

  it("answers with the node's result, outputs and streams up to the limit inline, the rest by digest", async () => {
    await register(reg("a", "a"));
    const answer = head.runAction(await oneAction("d-gcc", ["small.o", "big.o"]), 10);
    const leases = await poll(
      async () => (await head.lease({ nodeId: "a", session: session("a"), maxActions: 1, waitMs: 0, contextHashes: [] })).leases,
      (l) => l.length > 0,
    );
    const small = Buffer.from("object!");
    const big = Buffer.from("a larger object");
    const err = Buffer.from("warning");
    const [smallD, bigD, errD] = await Promise.all([store.put(small), store.put(big), store.put(err)]);
    const result = {
      outputFiles: [
        { path: "small.o", digest: smallD, isExecutable: false, contents: Buffer.alloc(0) },
        { path: "big.o", digest: bigD, isExecutable: false, contents: Buffer.alloc(0) },
      ],
      exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: errD, executionMetadata: undefined,
    };
    await head.reportResult({ nodeId: "a", session: session("a"), leaseId: leases[0]!.leaseId, result, error: "", depfile: "", actionError: false });
    const got = await answer;
    expect(got).toMatchObject({ infraError: "", node: "a", cached: false });
    expect(got.result!.outputFiles.map((f) => Buffer.from(f.contents).toString())).toEqual(["object!", ""]);
    expect(got.result!.outputFiles[1]!.digest).toEqual(bigD);
    expect(Buffer.from(got.result!.stderrRaw).toString()).toBe("warning");
  });

  it("answers a failure of the farm's own as infra_error, with no result", async () => {
    await register(reg("gcc-box", "g"));
    const got = await head.runAction(await oneAction("d-clang", []), 1024);
    expect(got.infraError).toMatch(/no node has the toolchain/);
    expect(got.result).toBeUndefined();
  });

  it("refuses a host step (only a build's own client runs one: it would wait forever); found by test/fuzz-wire", async () => {
    const req = await oneAction("d-gcc", []);
    req.actions[0]!.host = true;
    await expect(head.runAction(req, 1024)).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, message: expect.stringMatching(/host step/) });
  });

  it("cancels the build when its caller hangs up", async () => {
    await register(reg("a", "a"));
    const abort = new AbortController();
    const answer = head.runAction(await oneAction("d-gcc", []), 1024, abort.signal);
    const running = async () => (await head.getStatus()).builds.length;
    expect(await poll(running, (n) => n > 0)).toBe(1);
    abort.abort();
    await expect(answer).rejects.toMatchObject({ code: Status.CANCELLED });
    expect(await poll(running, (n) => n === 0)).toBe(0);
  });
});

/** A fake digest: placement compares hashes and sizes, never bytes; well formed (hex), as the head's edge requires, and distinct per tag. */
const fake = (tag: string, sizeBytes: number) => ({ hash: Buffer.from(tag).toString("hex").padEnd(64, "0"), sizeBytes });

/** A build of `n` independent compiles (equal priority) against a source context made of `files`. */
async function submitCompiles(rootTag: string, files: Record<string, number>, n: number): Promise<BuildEvent[]> {
  const root = fake(rootTag, 100);
  const map = new Map<string, ContextEntry>(Object.entries(files).map(([path, size]) => [path, { digest: fake(path.replace(/\W/g, "") + size.toString(16), size), executable: false }]));
  const actions: GraphAction[] = Array.from({ length: n }, (_, i) => ({
    id: `${rootTag}${i}`, kind: "compile", label: `CC ${rootTag}${i}`, arguments: ["/usr/bin/gcc", "-c", `f${i}.c`, "-o", `f${i}.o`], cwd: "",
    inputs: [], outputs: [`f${i}.o`], deps: [], host: false, toolchain: "d-gcc", environmentVariables: [], shell: "",
  }));
  const { buildId } = await head.submitBuild({ contextRoot: root, actions, noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 }, { root, files: map });
  const events: BuildEvent[] = [];
  head.watchBuild(buildId, 0, (e) => events.push(e));
  await until(() => events.filter((e) => e.type === "action" && e.state === "queued").length === n);
  return events;
}

describe("Head placement by input bytes held", () => {
  it("hands a node the equally urgent compiles of the context it holds, else of the one it shares most bytes with", async () => {
    await register(reg("holds-b", "b"));
    await register(reg("holds-a", "a"));
    await register(reg("fresh", "f"));
    // Queued in this order: A's compiles, then B's, then A2's (A with one small file edited; the big header is shared).
    await submitCompiles("a", { "big.h": 1_000_000, "x.c": 100 }, 3);
    await submitCompiles("b", { "other.h": 5_000, "y.c": 100 }, 3);
    await submitCompiles("c", { "big.h": 1_000_000, "x.c": 101 }, 3);
    const lease = async (nodeId: string, max: number, contextHashes: string[]) =>
      (await head.lease({ nodeId, session: session(nodeId), maxActions: max, waitMs: 0, contextHashes })).leases.map((l) => l.actionId);
    // B's compiles were queued after A's: queue order alone would give holds-b A's.
    expect(await lease("holds-b", 2, [fake("b", 100).hash])).toEqual(["b0", "b1"]);
    // A node holding A prefers A; once A is drained, A2 (it holds A2's big header) over B.
    expect(await lease("holds-a", 4, [fake("a", 100).hash])).toEqual(["a0", "a1", "a2", "c0"]);
    // What a node holds is what its latest call says.
    expect(await lease("holds-b", 1, [fake("c", 100).hash])).toEqual(["c1"]);
    // A node holding nothing takes the queue's order.
    expect(await lease("fresh", 5, [])).toEqual(["b2", "c2"]);
  });

  it("never lets bytes held outrank the critical path", async () => {
    await register(reg("holds-b", "b"));
    await submitCompiles("b", { "y.c": 100 }, 2);
    // An action on another context with a dependent: a longer path, so more urgent.
    const root = fake("a", 100);
    const mk = (id: string, deps: string[]): GraphAction => ({
      id, kind: "compile", label: id, arguments: ["/usr/bin/gcc", "-c", `${id}.c`], cwd: "", inputs: [], outputs: [], deps,
      host: false, toolchain: "d-gcc", environmentVariables: [], shell: "",
    });
    const { buildId } = await head.submitBuild(
      { contextRoot: root, actions: [mk("first", []), mk("then", ["first"])], noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 },
      { root, files: new Map() },
    );
    const events: BuildEvent[] = [];
    head.watchBuild(buildId, 0, (e) => events.push(e));
    await until(() => events.some((e) => e.type === "action" && e.state === "queued"));
    const got = await head.lease({ nodeId: "holds-b", session: session("holds-b"), maxActions: 3, waitMs: 0, contextHashes: [fake("b", 100).hash] });
    expect(got.leases.map((l) => l.actionId)).toEqual(["first", "b0", "b1"]);
  });
});

describe("Head peer hints (P2P)", () => {
  const served = (name: string, port: number): RegisterRequest => ({ ...reg(name, name), advertise: `127.0.0.1:${port}` });

  it("names the nodes holding a compile's context, and for a link the node that made its objects — never itself or a node serving nothing", async () => {
    await register(served("holder", 7001));
    await register(reg("mute", "m")); // holds the context too, but serves no blobs
    await register(served("asker", 7002));
    await submitCompiles("a", { "big.h": 1_000_000, "x.c": 100 }, 2);
    const ctx = fake("a", 100).hash;
    await head.heartbeat({ nodeId: "holder", session: session("holder"), running: 0, load: 0, contextHashes: [ctx] });
    await head.heartbeat({ nodeId: "mute", session: session("mute"), running: 0, load: 0, contextHashes: [ctx] });
    const [compile] = (await head.lease({ nodeId: "asker", session: session("asker"), maxActions: 1, waitMs: 0, contextHashes: [] })).leases;
    expect(compile!.peers).toEqual([{ nodeId: "holder", address: "127.0.0.1:7001", holdsRoot: true }]);
    // A node holding the context itself is told of no one.
    const [own] = (await head.lease({ nodeId: "holder", session: session("holder"), maxActions: 1, waitMs: 0, contextHashes: [ctx] })).leases;
    expect(own!.peers).toEqual([]);
    // A context that only shares bytes with the holder's (one file edited): the files that changed are not
    // the holder's to give, so no one is named.
    await submitCompiles("c", { "big.h": 1_000_000, "x.c": 101 }, 1);
    const [edited] = (await head.lease({ nodeId: "asker", session: session("asker"), maxActions: 1, waitMs: 0, contextHashes: [ctx] })).leases;
    expect(edited!.actionId).toBe("c0");
    expect(edited!.peers).toEqual([]);

    // An object made on "holder", then a link reading it leased by "asker".
    const root = await store.put(Directory.encode({ files: [], directories: [], symlinks: [] }).finish());
    const obj = await store.put(Buffer.from("object bytes"));
    const act = (id: string, extra: Partial<GraphAction>): GraphAction => ({
      id, kind: "other", label: id, arguments: ["/usr/bin/tool"], cwd: "", inputs: [], outputs: [], deps: [], host: false, toolchain: "d-gcc", environmentVariables: [], shell: "", ...extra,
    });
    const { buildId } = await head.submitBuild(
      { contextRoot: root, actions: [act("make-o", { outputs: ["x.o"] }), act("link", { kind: "link", inputs: ["x.o"], outputs: ["app"], deps: ["make-o"] })], noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 },
      { root, files: new Map() },
    );
    const events: BuildEvent[] = [];
    head.watchBuild(buildId, 0, (e) => events.push(e));
    const queued = (id: string) => events.some((e) => e.type === "action" && e.id === id && e.state === "queued");
    await until(() => queued("make-o"));
    const [make] = (await head.lease({ nodeId: "holder", session: session("holder"), maxActions: 1, waitMs: 0, contextHashes: [ctx] })).leases;
    expect(make!.actionId).toBe("make-o");
    const result = { outputFiles: [{ path: "x.o", digest: obj, isExecutable: false, contents: Buffer.alloc(0) }], exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined };
    await head.reportResult({ nodeId: "holder", session: session("holder"), leaseId: make!.leaseId, result, error: "", depfile: "", actionError: false });
    await until(() => queued("link"));
    const [link] = (await head.lease({ nodeId: "asker", session: session("asker"), maxActions: 1, waitMs: 0, contextHashes: [] })).leases;
    expect(link!.actionId).toBe("link");
    expect(link!.peers).toEqual([{ nodeId: "holder", address: "127.0.0.1:7001", holdsRoot: false }]);
  });
});

describe("Head warm-up of compile contexts", () => {
  it("names a running build's compile root to an idle node that lacks it, once, and never to one holding it", async () => {
    await register(reg("idle", "i"));
    await register(reg("holder", "h"));
    const root = fake("w", 100);
    const act = (id: string, extra: Partial<GraphAction>): GraphAction => ({
      id, kind: "compile", label: id, arguments: ["/usr/bin/gcc", "-c", "x.c", "-o", "x.o"], cwd: "", inputs: [], outputs: [], deps: [], host: false, toolchain: "d-gcc", environmentVariables: [], shell: "", ...extra,
    });
    // The compile waits for a host step (the client's), so no node has work: only the root to warm.
    await head.submitBuild(
      { contextRoot: root, actions: [act("gen", { kind: "other", host: true, arguments: ["./gen.sh"] }), act("cc", { deps: ["gen"] })], noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 },
      { root, files: new Map([["x.c", { digest: fake("xc", 10), executable: false }]]) },
    );
    const lease = (nodeId: string, contextHashes: string[]) => head.lease({ nodeId, session: session(nodeId), maxActions: 1, waitMs: 0, contextHashes });
    let warm: string[] = [];
    const deadline = Date.now() + 5_000;
    while (!warm.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      warm = (await lease("idle", [])).warm.map((w) => w.root!.hash);
    }
    // The tree is not in the store here, so the compile root is the context itself.
    expect(warm).toEqual([root.hash]);
    expect((await lease("idle", [])).warm).toEqual([]);
    expect((await lease("holder", [root.hash])).warm).toEqual([]);
  });
});

describe("undeclaredOutputs", () => {
  const result = (...paths: string[]) => ({
    outputFiles: paths.map((path) => ({ path, digest: undefined, isExecutable: false, contents: Buffer.alloc(0) })),
    exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined,
  });

  it("takes the declared paths (normalized) and names every other one, and a repeat", () => {
    expect(undeclaredOutputs(result("x.o", "./dir/y.d"), ["x.o", "dir/y.d"])).toEqual([]);
    expect(undeclaredOutputs(result("x.o", "../../x", "/tmp/x", "dir/../x.o"), ["x.o"])).toEqual(['"../../x"', '"/tmp/x"', '"dir/../x.o"']);
  });
});
