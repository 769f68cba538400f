// The head: owns the scheduler, the action cache and the CAS; prepares ready actions (cache
// look-up or lease), hands leases to nodes that pull them (long-polls), writes the cache from their results,
// and streams each build's events. Its nodes — registry, placement, warm-up — are node-registry.ts's.
// Transport-free: the embedded default calls it in-process.
import { posix } from "node:path";
import {
  type Clock,
  type Digest,
  type IdGenerator,
  type Logger,
  digestKey,
  formatDuration,
  errorMessage,
  isInfrastructureError,
  OrionError,
  Status,
} from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { ActionCache } from "../cache/index.js";
import { type DirectoryCache, loadTree } from "../merkle/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type * as wire from "../gen/orion/v1/scheduler.js";
import type { GraphAction, SubmitBuildRequest } from "../gen/orion/v1/scheduler.js";
import { type ActionKind, type BuildEvent, Scheduler, type Task, type TaskSpec, type Worker } from "../scheduler/index.js";
import type { BuildsApi, ContextUpload, FarmStatusApi, HostStepLease, NodeAttachments, NodeControlApi } from "./api.js";
import { isMissingInputs, lostInputs, waitForBlobs } from "./lost-inputs.js";
import { type ContextEntry, ContextIndex } from "./context-index.js";
import type { DurationHistory } from "./durations.js";
import { checkSubmitBuild } from "./requests.js";
import { type BuildView, compileInputRoot, type Prepared, type PrepareDeps, prepareAction, recordResult } from "./prepare.js";
import { type CompileRoot, NodeRegistry } from "./node-registry.js";
import { type Payload, toolchainOf } from "./payload.js";

export interface HeadOptions {
  store: BlobStore;
  cache: ActionCache;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  externalDigest: PrepareDeps["externalDigest"];
  /** Durations learned from earlier builds, for critical-path ordering (defaults by kind otherwise). */
  durations?: DurationHistory;
  heartbeatMs?: number;
  /** A node silent this long is evicted and its leases re-queued; absent = never (the embedded node lives in this process). */
  nodeTtlMs?: number;
  /** A finished build's events and results are kept this long for its client, then forgotten; absent = kept. */
  keepFinishedMs?: number;
}

interface HeadBuild {
  id: string;
  req: SubmitBuildRequest;
  actions: Map<string, GraphAction>;
  view: BuildView;
  results: Map<string, ActionResult>;
  events: BuildEvent[];
  listeners: Set<(e: BuildEvent) => void>;
  hostWorker: Worker<Payload>;
  /** Toolchain digests of its compiles: only a node that can run one warms its root up. */
  compileToolchains: Set<string>;
  finished: boolean;
  startedAt?: number;
  /** How long its queued actions may wait while no registered node can run them (0: they fail at once). */
  noNodeTimeoutMs: number;
  /** Since when no registered node takes any of its queued actions (the no-node timeout runs from then). */
  starvedSince?: number;
}

/** How long an action whose inputs the store lost waits for its client to send them again before it re-runs anyway. */
const LOST_INPUT_WAIT_MS = 10_000;

/** How often the head looks for builds that no registered node can serve (while one has a no-node timeout). */
const STARVED_CHECK_MS = 1_000;

const DEFAULT_ESTIMATES: Record<string, number> = { compile: 150, link: 200, archive: 30, depgen: 100, configure: 3000, script: 100, other: 100 };

export class Head implements NodeControlApi, NodeAttachments, BuildsApi, FarmStatusApi {
  private readonly scheduler: Scheduler<Payload>;
  private readonly builds = new Map<string, HeadBuild>();
  private readonly nodes: NodeRegistry;
  private readonly contexts = new Map<string, ContextIndex>();
  /** Directory messages of contexts loaded from the store: each host step's new context re-reads only what it changed. */
  private readonly directories: DirectoryCache = new Map();
  /** Leases in flight → their build, task and the node they went to (only that node may report them). */
  private readonly leaseOwners = new Map<string, { build: HeadBuild; task: Task<Payload>; nodeId: string }>();
  /** Workers waiting in a long-poll lease, woken when work appears. */
  private waiters = new Set<() => void>();
  /** Builds not finished yet (the farm head keeps finished ones for a while: no need to look at those every second). */
  private readonly live = new Set<HeadBuild>();
  private starvedTimer?: { cancel(): void };
  private readonly deps: PrepareDeps;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: HeadOptions) {
    this.log = opts.logger.child({ module: "head" });
    this.deps = { store: opts.store, cache: opts.cache, externalDigest: opts.externalDigest, pruneMemo: new Map() };
    this.scheduler = new Scheduler<Payload>({
      clock: opts.clock,
      ids: opts.ids,
      onReady: (task) => this.onReady(task),
      onWork: () => this.wake(),
      // Compiles run against the whole source context, which a node keeps materialized: that is the input
      // worth placing by. Archives and links read a few objects through a small root of their own.
      placementKey: (task) => (task.spec.kind === "compile" && task.payload && "prepared" in task.payload ? task.payload.prepared.inputRoot.hash : undefined),
    });
    this.nodes = new NodeRegistry({
      clock: opts.clock,
      logger: this.log,
      heartbeatMs: opts.heartbeatMs,
      nodeTtlMs: opts.nodeTtlMs,
      onRemoved: (nodeId, reason) => this.releaseNode(nodeId, reason),
      contextByHash: (hash) => this.contextByHash(hash),
      compileRoots: () => this.compileRoots(),
    });
  }

  // --- nodes (the registry's, but for leases and results) ------------------

  async register(req: wire.RegisterRequest): Promise<wire.RegisterResponse> {
    return this.nodes.register(req);
  }

  async heartbeat(req: wire.HeartbeatRequest): Promise<wire.HeartbeatResponse> {
    return this.nodes.heartbeat(req);
  }

  async leave(req: wire.LeaveRequest): Promise<void> {
    this.nodes.leave(req);
  }

  attached(req: wire.AttachRequest, end: () => void): () => void {
    return this.nodes.attached(req.nodeId, req.session, end);
  }

  async lease(req: wire.LeaseRequest, signal?: AbortSignal): Promise<wire.LeaseResponse> {
    const node = this.nodes.caller(req.nodeId, req.session);
    node.lastSeen = this.opts.clock.now();
    this.nodes.noteContexts(node, req.contextHashes);
    // A node that hung up mid-wait would never see what it was handed: the wait ends, empty.
    // An evicted node must not take work: it re-registers first.
    const leases = await this.waitFor(
      () => (this.nodes.isCurrent(node) && !signal?.aborted ? this.scheduler.lease(node.worker, Math.max(1, req.maxActions)) : []),
      req.waitMs,
      // A root to warm up ends the wait too: the node makes it while no work is there.
      () => !this.nodes.isCurrent(node) || this.nodes.rootsToWarm(node).length > 0,
      signal,
    );
    node.lastSeen = this.opts.clock.now();
    const warmRoots = leases.length || !this.nodes.isCurrent(node) ? [] : this.nodes.rootsToWarm(node);
    return {
      warm: this.nodes.warmUp(node, warmRoots),
      leases: leases.map((l): wire.Lease => {
        const build = this.builds.get(l.task.buildId)!;
        this.leaseOwners.set(l.leaseId, { build, task: l.task, nodeId: node.id });
        const p = (l.task.payload as { prepared: Prepared }).prepared;
        return {
          leaseId: l.leaseId,
          buildId: l.task.buildId,
          actionId: l.task.spec.id,
          action: p.action,
          command: p.command,
          attempt: l.attempt,
          inputDirectories: [],
          projectRoot: build.view.projectRoot,
          kind: l.task.spec.kind,
          peers: this.nodes.peersFor(node, p),
        };
      }),
    };
  }

  async reportResult(req: wire.ReportResultRequest): Promise<void> {
    const found = this.leaseOwners.get(req.leaseId);
    if (!found || !this.scheduler.isLive(req.leaseId)) {
      this.leaseOwners.delete(req.leaseId);
      return; // stale: the task was re-queued or cancelled
    }
    // Only the node the lease went to may settle it; a refused report leaves the lease with its owner.
    this.nodes.caller(req.nodeId, req.session);
    if (found.nodeId !== req.nodeId) {
      throw new OrionError(`lease ${req.leaseId} was not given to node ${req.nodeId}`, { code: Status.PERMISSION_DENIED });
    }
    const { build, task } = found;
    const prepared = (task.payload as { prepared: Prepared }).prepared;
    const undeclared = req.result ? undeclaredOutputs(req.result, prepared.command.outputPaths) : [];
    if (undeclared.length) {
      // Nothing of it is kept: no result, no cache entry. The action runs again elsewhere.
      this.leaseOwners.delete(req.leaseId);
      const error = `node ${req.nodeId} reported outputs the action does not declare: ${undeclared.join(", ")}`;
      this.scheduler.complete(req.leaseId, { status: "infra", error, node: req.nodeId });
      throw new OrionError(error, { code: Status.INVALID_ARGUMENT });
    }
    this.leaseOwners.delete(req.leaseId);
    if (req.error) {
      if (isMissingInputs(req.error) && task.payload && "prepared" in task.payload) {
        void this.recoverLostInputs(build, task.payload.prepared, req.leaseId, req.error, req.nodeId);
        return;
      }
      // The action's own fault fails it where it stands; anything else may go better on another attempt.
      this.scheduler.complete(req.leaseId, req.actionError ? { status: "failed", error: req.error, node: req.nodeId } : { status: "infra", error: req.error, node: req.nodeId });
      return;
    }
    const result = req.result!;
    const phases = phasesOf(result);
    build.results.set(task.spec.id, result);
    if (result.exitCode !== 0) {
      this.scheduler.complete(req.leaseId, { status: "failed", error: `exit code ${result.exitCode}`, node: req.nodeId, phases });
      return;
    }
    const action = build.actions.get(task.spec.id)!;
    this.recordProduced(build, action, result);
    this.nodes.noteOutputs(req.nodeId, result.outputFiles.map((f) => f.digest!).filter(Boolean));
    if (phases.executeMs > 0) this.opts.durations?.record(action.kind, action.label, phases.executeMs);
    try {
      await recordResult(action, prepared, result, req.depfile || undefined, build.view, this.deps);
    } catch (err) {
      this.log.warn({ action: task.spec.id, err: errorMessage(err) }, "could not write the action cache");
    }
    this.scheduler.complete(req.leaseId, { status: "ok", node: req.nodeId, phases });
  }

  /**
   * A node lacked inputs of an action. Those this store no longer holds (rot, dropped as they were read) are asked of
   * the build's client, which uploads them again (REAPI's FAILED_PRECONDITION pattern); the action re-runs once they
   * are back, or after LOST_INPUT_WAIT_MS. Inputs this store still holds were a node-side loss: it re-runs at once.
   */
  private async recoverLostInputs(build: HeadBuild, prepared: Prepared, leaseId: string, error: string, node: string): Promise<void> {
    const lost = await lostInputs(this.opts.store, prepared.inputRoot, this.directories).catch(() => []);
    if (lost.length) {
      this.log.warn({ build: build.id, node, lost: lost.length, first: digestKey(lost[0]!) }, "the store lost inputs of an action; the client is asked to upload them again");
      const notice: BuildEvent = { type: "missing-blobs", seq: build.events.at(-1)?.seq ?? 0, buildId: build.id, digests: lost.map(digestKey) };
      for (const l of build.listeners) l(notice);
      await waitForBlobs(this.opts.store, lost, this.opts.clock, LOST_INPUT_WAIT_MS, () => build.finished || !this.scheduler.isLive(leaseId)).catch(() => false);
    }
    if (this.scheduler.isLive(leaseId)) this.scheduler.complete(leaseId, { status: "infra", error, node });
  }

  /** Drops a node: its leases go back to the queue. */
  removeNode(nodeId: string, reason: string): void {
    this.nodes.remove(nodeId, reason);
  }

  /** A node was dropped from the registry: its leases go back to the queue, and waiting calls look again. */
  private releaseNode(nodeId: string, reason: string): void {
    const released = this.scheduler.releaseWorker(nodeId, reason);
    for (const leaseId of this.leaseOwners.keys()) if (!this.scheduler.isLive(leaseId)) this.leaseOwners.delete(leaseId);
    if (released) this.log.info({ node: nodeId, released }, "leases re-queued");
    this.wake();
  }

  /**
   * While builds run: every STARVED_CHECK_MS, a build whose queued actions no registered node takes (every node gone,
   * or none registered yet) starts its clock; one that stays so for its no-node timeout has those actions fail as
   * infrastructure errors (exit 3), rather than wait forever. A node that comes back in time stops it. A timeout of 0
   * fails at the first check: so does an action handed back by a lost node, which never passes onReady again.
   */
  private watchStarved(): void {
    if (this.starvedTimer || this.closed || !this.live.size) return;
    this.starvedTimer = this.opts.clock.setTimeout(() => {
      this.starvedTimer = undefined;
      const now = this.opts.clock.now();
      const queued = this.scheduler.queuedByBuild((t) => !t.spec.host);
      // One answer per toolchain per tick: whether any registered node offers it.
      const placeable = new Map<string, boolean>();
      const canRun = (t: Task<Payload>) => {
        const tc = toolchainOf((t.payload as { prepared: Prepared }).prepared);
        let yes = placeable.get(tc);
        if (yes === undefined) placeable.set(tc, (yes = this.nodes.placeable(tc)));
        return yes;
      };
      for (const b of this.live) {
        const mine = queued.get(b.id);
        if (!mine || mine.some(canRun)) {
          b.starvedSince = undefined;
          continue;
        }
        b.starvedSince ??= now;
        if (now - b.starvedSince < b.noNodeTimeoutMs) continue;
        b.starvedSince = undefined;
        const waited = b.noNodeTimeoutMs > 0 ? ` for ${formatDuration(b.noNodeTimeoutMs)}` : "";
        const error = `no live node could run the build's actions${waited} (${this.nodes.whyNone()})`;
        this.log.warn({ build: b.id, queued: mine.length, error }, "failing a build no node can serve");
        this.scheduler.failQueued(b.id, (t) => !t.spec.host, error);
      }
      this.watchStarved();
    }, STARVED_CHECK_MS);
  }

  async getStatus(): Promise<wire.GetStatusResponse> {
    const now = this.opts.clock.now();
    return {
      nodes: this.nodes.status(now),
      builds: [...this.builds.values()]
        .filter((b) => !b.finished)
        .map((b) => {
          const summary = this.scheduler.summary(b.id);
          return {
            buildId: b.id,
            projectRoot: b.req.projectRoot,
            actions: summary?.actions ?? 0,
            done: summary ? summary.executed + summary.cacheHits + summary.failed + summary.skipped : 0,
            runningMs: b.events.length ? now - (b.startedAt ?? now) : 0,
          };
        }),
    };
  }

  // --- builds --------------------------------------------------------------

  async submitBuild(req: SubmitBuildRequest, context?: ContextUpload): Promise<{ buildId: string }> {
    // Before anything is kept: a graph the scheduler could never finish must not show as running forever.
    checkSubmitBuild(req);
    const id = this.opts.ids();
    const ctx = await this.context(req.contextRoot!, context);
    const build: HeadBuild = {
      id,
      req,
      actions: new Map(req.actions.map((a) => [a.id, a])),
      view: { projectRoot: req.projectRoot, context: ctx, produced: new Map(), noCache: req.noCache },
      results: new Map(),
      events: [],
      listeners: new Set(),
      hostWorker: { name: "client", accepts: (t) => t.buildId === id && !!t.payload && "host" in t.payload },
      compileToolchains: new Set(req.actions.filter((a) => a.kind === "compile" && !a.host).map((a) => a.toolchain)),
      finished: false,
      startedAt: this.opts.clock.now(),
      noNodeTimeoutMs: Math.max(0, Number(req.noNodeTimeoutMs ?? 0)),
    };
    this.builds.set(id, build);
    this.live.add(build);
    this.deriveWarmRoot(build);
    this.watchStarved();
    const estimate = (kind: string, label: string) => this.opts.durations?.estimate(kind, label) ?? DEFAULT_ESTIMATES[kind] ?? 100;
    const specs: TaskSpec[] = req.actions.map((a) => ({
      id: a.id,
      deps: a.deps,
      kind: a.kind as ActionKind,
      label: a.label,
      host: a.host,
      estimateMs: estimate(a.kind, a.label),
      cmd: a.host ? a.shell || a.arguments.join(" ") : undefined,
      cwd: a.cwd,
    }));
    void this.scheduler
      .addBuild(id, specs, {
        retries: req.retries,
        failFast: true,
        onEvent: (e) => {
          build.events.push(e);
          for (const l of build.listeners) l(e);
          if (e.type === "summary") {
            build.finished = true;
            this.live.delete(build);
            if (this.opts.keepFinishedMs !== undefined) this.opts.clock.setTimeout(() => this.dropBuild(id), this.opts.keepFinishedMs);
            // The client's host-step long-poll must not outlive its build.
            this.wake();
          }
        },
      })
      .catch((err) => this.log.error({ build: id, err: errorMessage(err) }, "build failed to start"));
    return { buildId: id };
  }

  watchBuild(buildId: string, fromSeq: number, onEvent: (event: BuildEvent) => void): () => void {
    const build = this.builds.get(buildId);
    if (!build) throw new OrionError(`unknown build ${buildId}`, { code: Status.NOT_FOUND });
    for (const e of build.events) if (e.seq > fromSeq) onEvent(e);
    if (build.finished) return () => {};
    build.listeners.add(onEvent);
    return () => build.listeners.delete(onEvent);
  }

  async getResult(buildId: string, actionId: string): Promise<ActionResult | undefined> {
    return this.builds.get(buildId)?.results.get(actionId);
  }

  async runAction(req: SubmitBuildRequest, inlineLimit: number, signal?: AbortSignal): Promise<wire.RunActionResponse> {
    if (req.actions.length !== 1) throw new OrionError(`RunAction: ${req.actions.length} actions, not one`, { code: Status.INVALID_ARGUMENT });
    // A host step runs on the client that leases it; RunAction's caller leases none, so it would wait forever.
    if (req.actions[0]!.host) throw new OrionError("RunAction: the action is a host step, which only a build's own client runs", { code: Status.INVALID_ARGUMENT });
    const actionId = req.actions[0]!.id;
    const { buildId } = await this.submitBuild(req);
    const answer: wire.RunActionResponse = { buildId, infraError: "", result: undefined, node: "", cached: false };
    let cancelled = false;
    await new Promise<void>((resolve) => {
      let detach: () => void = () => {};
      let done = false;
      const onAbort = () => {
        if (done) return;
        done = cancelled = true;
        detach();
        void this.cancelBuild(buildId).catch(() => undefined);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      detach = this.watchBuild(buildId, 0, (e) => {
        if (e.type === "action" && e.state === "failed" && e.infra) answer.infraError = e.error ?? "infrastructure failure";
        if (e.type === "action" && e.state === "finished" && e.node) answer.node = e.node;
        if (e.type === "action" && e.state === "cached") answer.cached = true;
        if (e.type === "summary" && !done) {
          done = true;
          signal?.removeEventListener("abort", onAbort);
          queueMicrotask(() => detach());
          resolve();
        }
      });
      if (signal?.aborted) onAbort();
    });
    if (cancelled) throw new OrionError(`RunAction: the caller went away; build ${buildId} cancelled`, { code: Status.CANCELLED });
    const result = this.builds.get(buildId)?.results.get(actionId);
    if (answer.infraError || !result) return answer;
    // The outputs ride along, so the caller needs no read per blob; what the store no longer holds stays by digest.
    const inline = async (digest: Digest | undefined): Promise<Buffer | undefined> =>
      digest && digest.sizeBytes > 0 && digest.sizeBytes <= inlineLimit ? this.opts.store.get(digest) : undefined;
    const outputFiles = await Promise.all(result.outputFiles.map(async (f) => (f.contents.length ? f : { ...f, contents: (await inline(f.digest)) ?? f.contents })));
    const stream = async (raw: Buffer, digest: Digest | undefined): Promise<Buffer> => (raw.length ? raw : ((await inline(digest)) ?? raw));
    const [stdoutRaw, stderrRaw] = await Promise.all([stream(result.stdoutRaw, result.stdoutDigest), stream(result.stderrRaw, result.stderrDigest)]);
    answer.result = { ...result, outputFiles, stdoutRaw, stderrRaw };
    return answer;
  }

  async leaseHostSteps(buildId: string, max: number, waitMs: number): Promise<HostStepLease[]> {
    const build = this.builds.get(buildId);
    if (!build) throw new OrionError(`unknown build ${buildId}`, { code: Status.NOT_FOUND });
    const leases = await this.waitFor(() => this.scheduler.lease(build.hostWorker, max), waitMs, () => build.finished);
    return leases.map((l) => {
      const a = build.actions.get(l.task.spec.id)!;
      return { leaseId: l.leaseId, actionId: a.id, argv: a.arguments, cwd: a.cwd };
    });
  }

  async reportHostStep(buildId: string, leaseId: string, ok: boolean, context?: ContextUpload, restored = false): Promise<void> {
    const build = this.builds.get(buildId);
    if (!build) return;
    if (context) {
      build.view.context = await this.context(context.root, context);
      // The new context already holds what earlier actions wrote into the tree.
      build.view.produced.clear();
      this.deriveWarmRoot(build);
    }
    this.scheduler.complete(leaseId, ok ? { status: "ok", restored } : { status: "failed", error: "host step failed" });
  }

  async cancelBuild(buildId: string): Promise<void> {
    this.scheduler.cancelBuild(buildId);
  }

  /** Forgets a finished build. */
  dropBuild(buildId: string): void {
    const b = this.builds.get(buildId);
    if (b?.finished) {
      this.builds.delete(buildId);
      this.scheduler.dropBuild(buildId);
    }
  }

  /** Ends every long-poll at once; later lease calls return nothing. */
  close(): void {
    this.closed = true;
    this.starvedTimer?.cancel();
    this.nodes.close();
    this.wake();
  }

  // --- internals -----------------------------------------------------------

  private onReady(task: Task<Payload>): void {
    const build = this.builds.get(task.buildId)!;
    if (task.spec.host) {
      this.scheduler.enqueue(task.buildId, task.spec.id, { host: true });
      return;
    }
    const action = build.actions.get(task.spec.id)!;
    prepareAction(action, build.view, this.deps).then(
      (prepared) => {
        if (prepared.cached) {
          build.results.set(action.id, prepared.cached);
          this.recordProduced(build, action, prepared.cached);
          this.scheduler.markCached(build.id, action.id);
        } else if (!this.nodes.placeable(toolchainOf(prepared)) && !this.mayWaitForNode(build, toolchainOf(prepared))) {
          // Nodes are there and none has (or lately had) the toolchain, or the build does not wait: failing now beats
          // a hang. Otherwise the action waits in the queue for a node, up to the build's no-node timeout.
          const error = this.nodes.unplaceable(posix.basename(action.arguments[0] ?? ""), toolchainOf(prepared));
          this.log.warn({ action: action.id, error }, "action cannot be placed");
          this.scheduler.failReady(build.id, action.id, error, true);
        } else {
          this.scheduler.enqueue(build.id, action.id, { prepared });
        }
      },
      (err) => {
        // A command the argv policy refuses is the user's error, reported in the build's events: not worth an error line.
        this.log[isInfrastructureError(err) ? "error" : "info"]({ action: action.id, err: errorMessage(err) }, "could not prepare action");
        this.scheduler.failReady(build.id, action.id, errorMessage(err));
      },
    );
  }

  /** With no node at all, or the last one with this toolchain lost within the build's no-node timeout, a node may come. */
  private mayWaitForNode(build: HeadBuild, toolchain: string): boolean {
    if (build.noNodeTimeoutMs === 0) return false;
    return this.nodes.size === 0 || this.nodes.offeredWithin(toolchain, build.noNodeTimeoutMs);
  }

  /** Derives the compile root of a build's current context in the background, then wakes idle nodes to warm it up. */
  private deriveWarmRoot(build: HeadBuild): void {
    if (!build.compileToolchains.size) return;
    compileInputRoot(build.view, this.deps).then(
      () => this.wake(),
      (err) => this.log.debug({ build: build.id, err: errorMessage(err) }, "no compile root to warm up"),
    );
  }

  /** The compile roots of the running builds with compiles, once derived (deriveWarmRoot starts that). */
  private *compileRoots(): Iterable<CompileRoot> {
    for (const b of this.builds.values()) {
      const root = b.view.context.compileRootDigest;
      if (root && b.compileToolchains.size && !b.finished) yield { root, toolchains: b.compileToolchains };
    }
  }

  private contextByHash(hash: string): ContextIndex | undefined {
    // Compiles run in a context's compile root (the context without objects and archives): either names it.
    for (const c of this.contexts.values()) if (c.root.hash === hash || c.compileRootHash === hash) return c;
    return undefined;
  }

  private recordProduced(build: HeadBuild, action: GraphAction, result: ActionResult): void {
    for (const of of result.outputFiles) {
      const path = posix.normalize(posix.join(action.cwd || ".", of.path));
      build.view.produced.set(path, { digest: of.digest!, executable: of.isExecutable });
    }
  }

  private async context(root: Digest, upload?: ContextUpload): Promise<ContextIndex> {
    const key = digestKey(root);
    let ctx = this.contexts.get(key);
    if (!ctx) {
      const files: ReadonlyMap<string, ContextEntry> = upload?.files ?? (await loadTree(this.opts.store, root, { cache: this.directories })).files;
      ctx = new ContextIndex(root, files);
      this.contexts.set(key, ctx);
      // A handful of recent contexts is plenty: builds move forward.
      if (this.contexts.size > 8) this.contexts.delete(this.contexts.keys().next().value!);
    }
    return ctx;
  }

  /**
   * Long-poll: takes work now, or waits for it until `waitMs` passes, the head closes, `over()` says the wait is moot or
   * the caller hangs up (`signal`: that wait alone ends, empty).
   */
  private async waitFor<T>(take: () => T[], waitMs: number, over: () => boolean = () => false, signal?: AbortSignal): Promise<T[]> {
    const deadline = this.opts.clock.now() + Math.max(0, waitMs);
    for (;;) {
      const got = take();
      if (got.length || this.closed || signal?.aborted || over() || this.opts.clock.now() >= deadline) return got;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          timer.cancel();
          signal?.removeEventListener("abort", wake);
          resolve();
        };
        const timer = this.opts.clock.setTimeout(wake, deadline - this.opts.clock.now());
        this.waiters.add(wake);
        signal?.addEventListener("abort", wake, { once: true });
      });
    }
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

function phasesOf(result: ActionResult) {
  const m = result.executionMetadata;
  const span = (a?: Date, b?: Date) => (a && b ? Math.max(0, b.getTime() - a.getTime()) : 0);
  return {
    inputFetchMs: span(m?.inputFetchStartTimestamp, m?.inputFetchCompletedTimestamp),
    executeMs: span(m?.executionStartTimestamp, m?.executionCompletedTimestamp),
    uploadMs: span(m?.outputUploadStartTimestamp, m?.outputUploadCompletedTimestamp),
  };
}

/**
 * Output paths of a result that are not among the command's declared ones (compared normalized), or repeat one.
 * The declared ones come from the client's own graph: whether they may leave the working directory is the executor's call.
 */
export function undeclaredOutputs(result: ActionResult, declared: readonly string[]): string[] {
  const allowed = new Set(declared.map((p) => posix.normalize(p)));
  const seen = new Set<string>();
  const bad: string[] = [];
  for (const f of result.outputFiles) {
    const p = posix.normalize(f.path);
    if (!allowed.has(p) || seen.has(p)) bad.push(JSON.stringify(f.path));
    seen.add(p);
  }
  return bad;
}
