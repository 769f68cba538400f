// A node: pulls leases from the head when it has free slots, runs each in a sandbox, reports the result.
import { type Logger, errorMessage, isInfrastructureError, Status } from "../core/index.js";
import type { NodeControlApi } from "../head/api.js";
import type { Lease, Toolchain } from "../gen/orion/v1/scheduler.js";
import type { ExecOutcome, ExecRequest } from "../exec/index.js";

/** What runs one action; LocalExecutor in production, a no-op or sleeping one in benchmarks. */
export interface ActionExecutor {
  execute(req: ExecRequest): Promise<ExecOutcome>;
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
}

export class Node {
  private nodeId = "";
  /** Tools running now (slots in use). */
  private running = 0;
  /** Actions not yet reported (stop waits for them). */
  private reporting = 0;
  private stopped = false;
  private loop?: Promise<void>;
  private slotFreed?: () => void;
  private readonly inFlight = new Map<string, AbortController>();
  private readonly log: Logger;

  constructor(private readonly opts: NodeOptions) {
    this.log = opts.logger.child({ module: "node", node: opts.name });
  }

  get id(): string {
    return this.nodeId;
  }

  async start(): Promise<void> {
    const reg = await this.opts.head.register({
      name: this.opts.name,
      slots: this.opts.slots,
      toolchains: this.opts.toolchains,
      advertise: "",
      token: "",
    });
    this.nodeId = reg.nodeId;
    this.loop = this.run();
  }

  /** Stops leasing; running actions are cancelled (their process groups killed) and handed back. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.inFlight.values()) c.abort();
    this.slotFreed?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const free = this.opts.slots - this.running;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let leases: Lease[];
      try {
        ({ leases } = await this.opts.head.lease({ nodeId: this.nodeId, maxActions: free, waitMs: this.opts.leaseWaitMs ?? 1000 }));
      } catch (err) {
        if (this.stopped) break;
        this.log.warn({ err: errorMessage(err) }, "lease failed; retrying");
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
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
      });
      await this.opts.head.reportResult({ nodeId: this.nodeId, leaseId: lease.leaseId, result: outcome.result, error: "", depfile: outcome.depfile ?? "" });
    } catch (err) {
      const message = errorMessage(err);
      const cancelled = (err as { code?: number }).code === Status.CANCELLED;
      this.log[cancelled ? "debug" : "warn"]({ action: lease.actionId, err: message, infra: isInfrastructureError(err) }, "action could not run");
      await this.opts.head
        .reportResult({ nodeId: this.nodeId, leaseId: lease.leaseId, result: undefined, error: message || "execution failed", depfile: "" })
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
