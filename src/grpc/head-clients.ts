// Client adapters: NodeControlApi, BuildsApi and FarmStatusApi over the wire, so the node and `orion build` run the same code as in-process.
import * as grpc from "@grpc/grpc-js";
import { OrionError, Status } from "../core/index.js";
import type { BuildsApi, ContextUpload, FarmStatusApi, HostStepLease, NodeControlApi } from "../head/api.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type {
  AttachRequest,
  BuildsClient,
  GetResultsResponse,
  GetStatusResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseHostStepsResponse,
  LeaseRequest,
  LeaseResponse,
  LeaveRequest,
  NodeControlClient,
  RegisterRequest,
  RegisterResponse,
  ReportResultRequest,
  RunActionResponse,
  SubmitBuildRequest,
  SubmitBuildResponse,
} from "../gen/orion/v1/scheduler.js";
import type { BuildEvent } from "../scheduler/index.js";
import { rpc } from "./call.js";
import { fromServiceError } from "./errors.js";

/** Slack on top of a long-poll's own wait before the call counts as lost. */
const LONG_POLL_SLACK_MS = 30_000;
const UNARY_DEADLINE_MS = 60_000;

function deadline(ms: number): Partial<grpc.CallOptions> {
  return { deadline: Date.now() + ms };
}

/** Per-call metadata: empty, the connection's interceptor adds the token. */
function md(): grpc.Metadata {
  return new grpc.Metadata();
}

export class GrpcNodeControl implements NodeControlApi {
  constructor(
    private readonly client: NodeControlClient,
    private readonly address: string,
  ) {}

  register(req: RegisterRequest): Promise<RegisterResponse> {
    return rpc((cb) => this.client.register(req, md(), deadline(UNARY_DEADLINE_MS), cb), this.address, "Register");
  }

  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    return rpc((cb) => this.client.heartbeat(req, md(), deadline(UNARY_DEADLINE_MS), cb), this.address, "Heartbeat");
  }

  lease(req: LeaseRequest, signal?: AbortSignal): Promise<LeaseResponse> {
    return rpc((cb) => this.client.lease(req, md(), deadline(req.waitMs + LONG_POLL_SLACK_MS), cb), this.address, "Lease", signal);
  }

  async reportResult(req: ReportResultRequest): Promise<void> {
    await rpc((cb) => this.client.reportResult(req, md(), deadline(UNARY_DEADLINE_MS), cb), this.address, "ReportResult");
  }

  async leave(req: LeaveRequest): Promise<void> {
    await rpc((cb) => this.client.leave(req, md(), deadline(5_000), cb), this.address, "Leave");
  }

  /** No deadline: the call lasts as long as the node; keep-alive pings notice a head that went away. */
  attach(req: AttachRequest, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return resolve();
      const call = this.client.attach(req, md());
      const settle = (err?: Error) => {
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => call.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
      call.on("data", () => {});
      call.on("error", (err: grpc.ServiceError) => settle(signal.aborted ? undefined : fromServiceError(err, this.address, "Attach")));
      call.on("end", () => settle());
    });
  }
}

interface PendingResult {
  actionId: string;
  resolve(r: ActionResult | undefined): void;
  reject(err: unknown): void;
}

export class GrpcBuilds implements BuildsApi, FarmStatusApi {
  /** Result requests made in one turn of the event loop, per build: they travel as one GetResults call. */
  private readonly pendingResults = new Map<string, PendingResult[]>();

  constructor(
    private readonly client: BuildsClient,
    private readonly address: string,
  ) {}

  async submitBuild(req: SubmitBuildRequest, context?: ContextUpload): Promise<{ buildId: string }> {
    const full = { ...req, contextRoot: context?.root ?? req.contextRoot };
    const res = await rpc<SubmitBuildResponse>((cb) => this.client.submitBuild(full, md(), deadline(UNARY_DEADLINE_MS), cb), this.address, "SubmitBuild");
    return { buildId: res.buildId };
  }

  watchBuild(buildId: string, fromSeq: number, onEvent: (event: BuildEvent) => void, onError?: (err: Error) => void): () => void {
    let detached = false;
    let sawSummary = false;
    const stream = this.client.watchBuild({ buildId, fromSeq }, md());
    stream.on("data", (e: { json: string }) => {
      if (detached) return;
      const event = JSON.parse(e.json) as BuildEvent;
      if (event.type === "summary") sawSummary = true;
      onEvent(event);
    });
    stream.on("error", (err: grpc.ServiceError) => {
      if (detached || err.code === Status.CANCELLED) return;
      onError?.(fromServiceError(err, this.address, "WatchBuild"));
    });
    stream.on("end", () => {
      if (!detached && !sawSummary) onError?.(new OrionError(`the head at ${this.address} ended the build's event stream before its summary`));
    });
    return () => {
      detached = true;
      stream.cancel();
    };
  }

  getResult(buildId: string, actionId: string): Promise<ActionResult | undefined> {
    return new Promise((resolve, reject) => {
      let list = this.pendingResults.get(buildId);
      if (!list) {
        this.pendingResults.set(buildId, (list = []));
        setImmediate(() => void this.flushResults(buildId));
      }
      list.push({ actionId, resolve, reject });
    });
  }

  /** No deadline of its own: a compile takes as long as it takes; `signal` (the caller's) hangs up, which cancels the build. */
  runAction(req: SubmitBuildRequest, inlineLimit: number, signal?: AbortSignal): Promise<RunActionResponse> {
    return rpc((cb) => this.client.runAction({ build: req, inlineLimitBytes: inlineLimit }, md(), cb), this.address, "RunAction", signal);
  }

  async leaseHostSteps(buildId: string, max: number, waitMs: number): Promise<HostStepLease[]> {
    const res = await rpc<LeaseHostStepsResponse>(
      (cb) => this.client.leaseHostSteps({ buildId, maxSteps: max, waitMs }, md(), deadline(waitMs + LONG_POLL_SLACK_MS), cb),
      this.address,
      "LeaseHostSteps",
    );
    return res.leases.map((l) => ({ leaseId: l.leaseId, actionId: l.actionId, argv: l.arguments, cwd: l.cwd }));
  }

  async reportHostStep(buildId: string, leaseId: string, ok: boolean, context?: ContextUpload, restored = false): Promise<void> {
    await rpc(
      (cb) => this.client.reportHostStep({ buildId, leaseId, ok, contextRoot: context?.root, restored }, md(), deadline(UNARY_DEADLINE_MS), cb),
      this.address,
      "ReportHostStep",
    );
  }

  async cancelBuild(buildId: string): Promise<void> {
    await rpc((cb) => this.client.cancelBuild({ buildId }, md(), deadline(5_000), cb), this.address, "CancelBuild");
  }

  getStatus(): Promise<GetStatusResponse> {
    return rpc((cb) => this.client.getStatus({}, md(), deadline(10_000), cb), this.address, "GetStatus");
  }

  private async flushResults(buildId: string): Promise<void> {
    const list = this.pendingResults.get(buildId) ?? [];
    this.pendingResults.delete(buildId);
    try {
      const actionIds = [...new Set(list.map((p) => p.actionId))];
      const res = await rpc<GetResultsResponse>(
        (cb) => this.client.getResults({ buildId, actionIds }, md(), deadline(UNARY_DEADLINE_MS), cb),
        this.address,
        "GetResults",
      );
      const byId = new Map(res.outcomes.map((o) => [o.actionId, o.result]));
      for (const p of list) p.resolve(byId.get(p.actionId));
    } catch (err) {
      for (const p of list) p.reject(err);
    }
  }
}
