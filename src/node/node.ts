// A node: pulls leases from the head when it has free slots, runs each in a sandbox, reports the result.
import { loadavg } from "node:os";
import { type Logger, errorMessage, isInfrastructureError, Status } from "../core/index.js";
import type { NodeControlApi } from "../head/api.js";
import type { Lease, PeerHint, Toolchain, WarmRoot } from "../gen/orion/v1/scheduler.js";
import type { Digest } from "../gen/orion/v1/remote_execution.js";
import type { ExecOutcome, ExecRequest } from "../exec/index.js";

/** What runs one action; LocalExecutor in production, a no-op or sleeping one in benchmarks. */
export interface ActionExecutor {
  execute(req: ExecRequest): Promise<ExecOutcome>;
  /** Hashes of the input roots it holds materialized (or is materializing), told to the head for placement. */
  contexts?(): string[];
  /** Starts materializing an input root in the background (the head expects compiles there); it must show in contexts() at once. */
  warm?(root: Digest, peers: readonly PeerHint[]): void;
}

export interface NodeOptions {
  name: string;
  slots: number;
  head: NodeControlApi;
  executor: ActionExecutor;
  logger: Logger;
  /** Toolchains advertised to the head; a digest of "*" means "whatever the client found on this machine" (embedded). */
  toolchains: Toolchain[];
  /** How long one lease call may wait on the head for work. */
  leaseWaitMs?: number;
  /** Per-action timeout. */
  actionTimeoutMs?: number;
  /** Kept across restarts (in the node's data dir), so the head knows a restart from a second node. */
  instanceId?: string;
  /** Where this node serves blobs to peers, as announced to the head. */
  advertise?: string;
  /** How actions are isolated here, told to the head for `orion status` ("" or absent: unsandboxed). */
  sandbox?: string;
  /** Told the name the head gave it (to keep in its data dir). */
  onRegistered?(name: string): void;
}

export class Node {
  private nodeId = "";
  /** The secret the head gave this registration; every later call carries it. */
  private session = "";
  /** Tools running now (slots in use). */
  private running = 0;
  /** Actions not yet reported (stop waits for them). */
  private reporting = 0;
  private stopped = false;
  private loop?: Promise<void>;
  private attachment?: Promise<void>;
  private slotFreed?: () => void;
  private readonly inFlight = new Map<string, AbortController>();
  /** Aborted by stop: ends a waiting lease call and the heartbeat loop. */
  private readonly stopping = new AbortController();
  /** Aborted by stop after the node said goodbye: ends its Attach call, which must not read as a dropped node first. */
  private readonly detaching = new AbortController();
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatMs = 0;
  private registering?: Promise<void>;
  private readonly log: Logger;

  constructor(private readonly opts: NodeOptions) {
    this.log = opts.logger.child({ module: "node", node: opts.name });
  }

  get id(): string {
    return this.nodeId;
  }

  async start(): Promise<void> {
    await this.register();
    this.loop = this.run();
    this.attachment = this.holdAttached();
    this.scheduleHeartbeat();
  }

  /** Stops leasing; running actions are cancelled (their process groups killed) and handed back. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearTimeout(this.heartbeatTimer);
    // Leaving first hands the leases back under the node's name; the cancelled tools' reports then arrive stale.
    await this.opts.head.leave({ nodeId: this.nodeId, session: this.session }).catch((err) => this.log.debug({ err: errorMessage(err) }, "could not say goodbye"));
    this.detaching.abort();
    for (const c of this.inFlight.values()) c.abort();
    this.slotFreed?.();
    await this.loop;
    await this.attachment;
  }

  /** (Re-)registers under the name asked for; after an eviction the head hands the same name back. */
  private register(): Promise<void> {
    this.registering ??= (async () => {
      try {
        const reg = await this.opts.head.register({
          name: this.nodeId || this.opts.name,
          slots: this.opts.slots,
          toolchains: this.opts.toolchains,
          advertise: this.opts.advertise ?? "",
          token: "",
          instanceId: this.opts.instanceId ?? "",
          sandbox: this.opts.sandbox ?? "",
        });
        if (this.nodeId && reg.nodeId !== this.nodeId) this.log.warn({ was: this.nodeId, now: reg.nodeId }, "re-registered under another name");
        this.nodeId = reg.nodeId;
        this.session = reg.session;
        this.heartbeatMs = reg.heartbeatMs;
        this.opts.onRegistered?.(reg.nodeId);
      } finally {
        this.registering = undefined;
      }
    })();
    return this.registering;
  }

  /** Waits `ms`, or less when the node stops meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopping.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopping.signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * After a failed call: an evicted node (the head says NOT_FOUND) registers again; anything else is logged and retried.
   * `session` is the one the failed call carried: when another loop has registered again since, this answer is about
   * the old registration, and registering once more would only replace the fresh one (and hand back its work).
   */
  private async recover(err: unknown, what: string, session: string): Promise<void> {
    if (this.stopped) return;
    if ((err as { code?: number }).code !== Status.NOT_FOUND) {
      this.log.warn({ err: errorMessage(err) }, what);
      return;
    }
    if (session !== this.session) return;
    this.log.warn("the head no longer knows this node; registering again");
    await this.register().catch((e) => this.log.warn({ err: errorMessage(e) }, "could not register again"));
  }

  /**
   * Over the wire, keeps an Attach call open for as long as the node runs: the head takes its end as the node being
   * gone (at once, not at the TTL). When the head ends it (it dropped this registration, or is going away) or it
   * fails, the node looks again after a short pause: a head that no longer knows it gets a new registration.
   */
  private async holdAttached(): Promise<void> {
    const attach = this.opts.head.attach?.bind(this.opts.head);
    if (!attach) return;
    let failures = 0;
    while (!this.stopped) {
      const since = Date.now();
      const session = this.session;
      try {
        await attach({ nodeId: this.nodeId, session }, this.detaching.signal);
        if (!this.stopped) this.log.info("the head ended this node's attach call; attaching again");
      } catch (err) {
        // A head from before Attach: the node works as it did then, lost only at its TTL.
        if ((err as { code?: number }).code === Status.UNIMPLEMENTED) {
          this.log.warn("the head does not know Attach (an older head): this node is noticed gone only at its TTL");
          return;
        }
        await this.recover(err, "attach call failed; attaching again", session);
      }
      if (this.stopped) break;
      // A call that lasted is not a run of failures: the next one starts from the shortest pause.
      if (Date.now() - since > 10_000) failures = 0;
      await this.pause(Math.min(5000, 200 * 2 ** failures++));
    }
  }

  private contexts(): string[] {
    return this.opts.executor.contexts?.() ?? [];
  }

  private scheduleHeartbeat(): void {
    if (this.stopped || !(this.heartbeatMs > 0)) return;
    this.heartbeatTimer = setTimeout(() => {
      const session = this.session;
      this.opts.head
        .heartbeat({ nodeId: this.nodeId, session, running: this.running, load: loadavg()[0] ?? 0, contextHashes: this.contexts() })
        .catch((err) => this.recover(err, "heartbeat failed", session))
        .finally(() => this.scheduleHeartbeat());
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private async run(): Promise<void> {
    /** Lease calls failed in a row: the wait before the next one doubles, up to 5 s (a head restarting is not hammered). */
    let failures = 0;
    while (!this.stopped) {
      const free = this.opts.slots - this.running;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let leases: Lease[];
      let warm: WarmRoot[];
      const session = this.session;
      try {
        ({ leases, warm } = await this.opts.head.lease(
          { nodeId: this.nodeId, session, maxActions: free, waitMs: this.opts.leaseWaitMs ?? 1000, contextHashes: this.contexts() },
          this.stopping.signal,
        ));
      } catch (err) {
        if (this.stopped) break;
        await this.recover(err, "lease failed; retrying", session);
        await this.pause(Math.min(5000, 200 * 2 ** failures++));
        continue;
      }
      failures = 0;
      if (this.stopped) break;
      // Before the next lease call, which tells the head these roots are held (or on their way).
      for (const w of warm ?? []) if (w.root) this.opts.executor.warm?.(w.root, w.peers);
      for (const lease of leases) void this.execute(lease);
    }
    while (this.reporting > 0) await new Promise<void>((r) => (this.slotFreed = r));
  }

  private async execute(lease: Lease): Promise<void> {
    this.running++;
    this.reporting++;
    // A slot is a running tool: it is given back when the process exits, so the next tool starts
    // while this one's outputs are still being stored and reported.
    let slotHeld = true;
    const freeSlot = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.running--;
      const wake = this.slotFreed;
      this.slotFreed = undefined;
      wake?.();
    };
    const abort = new AbortController();
    this.inFlight.set(lease.leaseId, abort);
    try {
      const outcome = await this.opts.executor.execute({
        actionId: lease.actionId,
        command: lease.command!,
        inputRoot: lease.action!.inputRootDigest!,
        projectRoot: lease.projectRoot,
        kind: lease.kind,
        timeoutMs: this.opts.actionTimeoutMs ?? 10 * 60_000,
        signal: abort.signal,
        onProcessExit: freeSlot,
        peers: lease.peers,
      });
      await this.opts.head.reportResult({ nodeId: this.nodeId, session: this.session, leaseId: lease.leaseId, result: outcome.result, error: "", depfile: outcome.depfile ?? "", actionError: false });
    } catch (err) {
      const message = errorMessage(err);
      const cancelled = (err as { code?: number }).code === Status.CANCELLED;
      this.log[cancelled ? "debug" : "warn"]({ action: lease.actionId, err: message, infra: isInfrastructureError(err) }, "action could not run");
      await this.opts.head
        .reportResult({ nodeId: this.nodeId, session: this.session, leaseId: lease.leaseId, result: undefined, error: message || "execution failed", depfile: "", actionError: !cancelled && !isInfrastructureError(err) })
        .catch((e) => this.log.warn({ err: errorMessage(e) }, "could not report"));
    } finally {
      this.inFlight.delete(lease.leaseId);
      this.reporting--;
      freeSlot();
      const wake = this.slotFreed;
      this.slotFreed = undefined;
      wake?.();
    }
  }
}
