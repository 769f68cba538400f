// The head's two faces as interfaces — what nodes call and what build clients call. The head
// implements them in-process; the farm's gRPC adapters implement the same ones over the wire.
import type { Digest } from "../core/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type {
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseRequest,
  LeaseResponse,
  RegisterRequest,
  RegisterResponse,
  ReportResultRequest,
  SubmitBuildRequest,
} from "../gen/orion/v1/scheduler.js";
import type { BuildEvent } from "../scheduler/index.js";
import type { ContextEntry } from "./context-index.js";

export interface NodeControlApi {
  register(req: RegisterRequest): Promise<RegisterResponse>;
  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse>;
  lease(req: LeaseRequest): Promise<LeaseResponse>;
  reportResult(req: ReportResultRequest): Promise<void>;
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
  /** Delivers every event with seq > fromSeq, then live ones, until the summary; returns a detach function. */
  watchBuild(buildId: string, fromSeq: number, onEvent: (event: BuildEvent) => void): () => void;
  getResult(buildId: string, actionId: string): Promise<ActionResult | undefined>;
  leaseHostSteps(buildId: string, max: number, waitMs: number): Promise<HostStepLease[]>;
  /** A host step ended; when it changed the tree, the new context comes with it. */
  reportHostStep(buildId: string, leaseId: string, ok: boolean, context?: ContextUpload): Promise<void>;
  cancelBuild(buildId: string): Promise<void>;
}
