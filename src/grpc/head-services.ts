// The head's NodeControl and Builds services: thin adapters from the generated grpc-js interfaces onto NodeControlApi, BuildsApi and FarmStatusApi.
import * as grpc from "@grpc/grpc-js";
import { type Logger, OrionError, Status, errorMessage } from "../core/index.js";
import type { BuildsApi, FarmStatusApi, NodeAttachments, NodeControlApi } from "../head/api.js";
import type { ActionOutcome, BuildsServer, NodeControlServer } from "../gen/orion/v1/scheduler.js";
import type { Authenticator } from "./auth.js";
import { checkAttach, checkHeartbeat, checkId, checkLease, checkLeaseHostSteps, checkLeave, checkRegister, checkReportHostStep, checkReportResult } from "../head/requests.js";
import { toStatus } from "./errors.js";
import { serverStream, unary } from "./handlers.js";

/** How often the head writes an empty NodeCommand on each Attach call: proxies end streams idle for a minute or more. */
const ATTACH_PING_MS = 20_000;

/** The most a RunAction answer carries inline per output: the rest of its 64 MiB message is left for the others. */
const MAX_INLINE_BYTES = 16 * 1024 * 1024;

export function nodeControlService(head: NodeControlApi & NodeAttachments, auth: Authenticator, logger?: Logger): NodeControlServer {
  const log = logger?.child({ module: "node-control" });
  /** A call the head refused as not the node's to make (a forged or mismatched report, another node's session): logged with the peer. */
  // A thunk, so a request the edge checks refuse (they throw at once) is logged the same way.
  const refusedLogged = <T>(call: { getPeer(): string }, what: string, nodeId: string, f: () => Promise<T>): Promise<T> =>
    Promise.resolve().then(f).catch((err: unknown) => {
      const code = (err as { code?: number }).code;
      if (code === Status.PERMISSION_DENIED || code === Status.INVALID_ARGUMENT) log?.warn({ peer: call.getPeer(), call: what, node: nodeId, err: errorMessage(err) }, "refused a node call");
      throw err;
    });
  return {
    // Each request is checked before it reaches the head: a refusal is INVALID_ARGUMENT naming the field (head/requests.ts).
    register: unary(auth, async (req) => head.register(checkRegister(req))),
    heartbeat: unary(auth, async (req, call) => refusedLogged(call, "Heartbeat", req.nodeId, () => head.heartbeat(checkHeartbeat(req)))),
    lease: unary(auth, async (req, call) => {
      // A node that hangs up mid-wait (stopping) must not be handed leases it will never see.
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      return refusedLogged(call, "Lease", req.nodeId, () => head.lease(checkLease(req), abort.signal));
    }),
    reportResult: unary(auth, async (req, call) => {
      await refusedLogged(call, "ReportResult", req.nodeId, () => head.reportResult(checkReportResult(req)));
      return {};
    }),
    leave: unary(auth, async (req, call) => {
      await refusedLogged(call, "Leave", req.nodeId, () => head.leave(checkLeave(req)));
      return {};
    }),
    // Held open by the node; only a sign of life is written on it. Its end from the node's side (hang-up, death, a
    // dropped connection: grpc-js reports each as "cancelled") drops the node; the head ends it when it drops the node
    // itself. grpc-js reports "cancelled" after the head's own end too: the registry tells the two apart.
    attach: serverStream(auth, async (req, call) => {
      let ended = false;
      let ping: NodeJS.Timeout | undefined;
      const stop = () => {
        ended = true;
        clearInterval(ping);
      };
      const end = () => {
        if (ended) return;
        stop();
        call.end();
      };
      const detach = await refusedLogged(call, "Attach", req.nodeId, async () => head.attached(checkAttach(req), end));
      if (ended) return; // superseded already
      const hungUp = () => {
        stop();
        detach();
      };
      if (call.cancelled) return hungUp();
      ping = setInterval(() => call.write({ cancelLeaseIds: [] }), ATTACH_PING_MS);
      ping.unref();
      call.on("cancelled", hungUp);
    }),
  };
}

export function buildsService(head: BuildsApi & FarmStatusApi, auth: Authenticator, logger: Logger): BuildsServer {
  const log = logger.child({ module: "builds-service" });
  return {
    submitBuild: unary(auth, (req) => head.submitBuild(req, req.contextRoot ? { root: req.contextRoot } : undefined)),

    watchBuild(call) {
      const denied = auth(call.metadata);
      if (denied) {
        call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: denied });
        return;
      }
      try {
        checkId("WatchBuild", "build_id", call.request.buildId);
        if (!Number.isSafeInteger(call.request.fromSeq) || call.request.fromSeq < 0) throw new Error(`WatchBuild: from_seq is ${call.request.fromSeq}, not a sequence number ≥ 0`);
      } catch (err) {
        call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
        return;
      }
      let detach: () => void = () => {};
      let ended = false;
      try {
        detach = head.watchBuild(call.request.buildId, Number(call.request.fromSeq), (e) => {
          if (ended) return;
          call.write({ seq: e.seq, type: e.type, json: JSON.stringify(e) });
          if (e.type === "summary") {
            ended = true;
            call.end();
          }
        });
      } catch (err) {
        call.emit("error", toStatus(err));
        return;
      }
      if (ended) detach();
      call.on("cancelled", () => {
        ended = true;
        detach();
      });
    },

    getResults: unary(auth, async (req) => {
      checkId("GetResults", "build_id", req.buildId);
      for (const [i, id] of req.actionIds.entries()) checkId("GetResults", `action_ids[${i}]`, id);
      const outcomes: ActionOutcome[] = [];
      for (const id of req.actionIds) {
        const result = await head.getResult(req.buildId, id);
        outcomes.push({ actionId: id, state: result ? "done" : "unknown", result });
      }
      return { outcomes };
    }),

    runAction: unary(auth, async (req, call) => {
      if (!req.build) throw new OrionError("RunAction: build is missing", { code: Status.INVALID_ARGUMENT });
      const limit = Number(req.inlineLimitBytes);
      if (!Number.isSafeInteger(limit) || limit < 0) throw new OrionError(`RunAction: inline_limit_bytes is ${req.inlineLimitBytes}, not a size`, { code: Status.INVALID_ARGUMENT });
      // A caller that hangs up (Ctrl-C, an agent that stopped) must not leave its action running.
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      return head.runAction(req.build, Math.min(limit, MAX_INLINE_BYTES), abort.signal);
    }),

    cancelBuild: unary(auth, async (req) => {
      checkId("CancelBuild", "build_id", req.buildId);
      await head.cancelBuild(req.buildId);
      return {};
    }),

    leaseHostSteps: unary(auth, async (req) => {
      checkLeaseHostSteps(req.buildId, req.maxSteps, req.waitMs);
      const leases = await head.leaseHostSteps(req.buildId, req.maxSteps, req.waitMs);
      return { leases: leases.map((l) => ({ leaseId: l.leaseId, actionId: l.actionId, arguments: l.argv, cwd: l.cwd })) };
    }),

    reportHostStep: unary(auth, async (req) => {
      checkReportHostStep(req.buildId, req.leaseId, req.contextRoot);
      await head.reportHostStep(req.buildId, req.leaseId, req.ok, req.contextRoot ? { root: req.contextRoot } : undefined, req.restored).catch((err) => {
        log.warn({ build: req.buildId, err: errorMessage(err) }, "host step report failed");
        throw err;
      });
      return {};
    }),

    getStatus: unary(auth, () => head.getStatus()),
  };
}
