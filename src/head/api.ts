// The head's two faces as interfaces — what nodes call and what build clients call. The head
// implements them in-process; the farm's gRPC adapters implement the same ones over the wire.
import type { Digest } from "../core/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type {
  AttachRequest,
  GetStatusResponse,
  HeartbeatRequest,
  LeaveRequest,
  HeartbeatResponse,
  LeaseRequest,
  LeaseResponse,
  RegisterRequest,
  RegisterResponse,
  ReportResultRequest,
  RunActionResponse,
  SubmitBuildRequest,
} from "../gen/orion/v1/scheduler.js";
import type { BuildEvent } from "../scheduler/index.js";
import type { ContextEntry } from "./context-index.js";

export interface NodeControlApi {
  register(req: RegisterRequest): Promise<RegisterResponse>;
  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse>;
  /** `signal` ends a waiting lease call early (a node stopping); leases granted meanwhile are released by `leave`. */
  lease(req: LeaseRequest, signal?: AbortSignal): Promise<LeaseResponse>;
  reportResult(req: ReportResultRequest): Promise<void>;
  /** The node stops: whatever it still holds goes back to the queue now rather than at its TTL. */
  leave(req: LeaveRequest): Promise<void>;
  /**
   * Over the wire only: holds the node's Attach call open until `signal` aborts (resolves) or the call ends (the head
   * ended it: resolves; it failed: rejects). The head takes the call ending without a leave as the node being gone.
   * In-process there is no connection to lose, and no such call.
   */
  attach?(req: AttachRequest, signal: AbortSignal): Promise<void>;
}

/** The head's side of its nodes' Attach calls (the gRPC service's, in-process nothing calls it). */
export interface NodeAttachments {
  /**
   * A node opened an Attach call (its registration checked as on any node call). `end` ends that call (the head
   * dropped the registration, or is closing); the function returned is for the service to call when the call ends
   * on the node's side (it hung up, died, or its connection dropped): unless superseded, that drops the node.
   */
  attached(req: AttachRequest, end: () => void): () => void;
}

/** A host step handed to the build's client, which runs it in the real tree. */
export interface HostStepLease {
  leaseId: string;
  actionId: string;
  argv: string[];
  cwd: string;
}

/** The client's source context: its root digest, and (in-process only) the file map it was built from. */
export interface ContextUpload {
  root: Digest;
  files?: ReadonlyMap<string, ContextEntry>;
}

export interface BuildsApi {
  submitBuild(req: SubmitBuildRequest, context?: ContextUpload): Promise<{ buildId: string }>;
  /**
   * Delivers every event with seq > fromSeq, then live ones, until the summary; returns a detach function.
   * `onError` hears of a watch that ended before the summary (the head went away).
   */
  watchBuild(buildId: string, fromSeq: number, onEvent: (event: BuildEvent) => void, onError?: (err: Error) => void): () => void;
  getResult(buildId: string, actionId: string): Promise<ActionResult | undefined>;
  /**
   * Submits a build of exactly one action and waits for its outcome: its result with the output files, stdout and
   * stderr of up to `inlineLimit` bytes each inline. Aborting `signal` cancels the build.
   */
  runAction(req: SubmitBuildRequest, inlineLimit: number, signal?: AbortSignal): Promise<RunActionResponse>;
  leaseHostSteps(buildId: string, max: number, waitMs: number): Promise<HostStepLease[]>;
  /** A host step ended; when it changed the tree, the new context comes with it; `restored`: from the step cache, not run. */
  reportHostStep(buildId: string, leaseId: string, ok: boolean, context?: ContextUpload, restored?: boolean): Promise<void>;
  cancelBuild(buildId: string): Promise<void>;
}

/** What `orion status` shows: the head's nodes and running builds. */
export interface FarmStatusApi {
  getStatus(): Promise<GetStatusResponse>;
}
