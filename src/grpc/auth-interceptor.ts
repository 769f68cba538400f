// The server's gate: every call is authenticated and its method checked against the caller's role from its metadata
// alone, before any request message is read, and refusals are logged per peer at a bounded rate.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../core/index.js";
import { type AuthPolicy, type Role, roleResolver } from "./auth.js";

/** The roles that may call a method (its full path, `/orion.v1.Builds/SubmitBuild`); undefined = none may. */
export type MethodRoles = (path: string) => readonly Role[] | undefined;

/** The head: nodes run NodeControl, clients Builds (host steps are leased by the client that runs them), both read and write blobs. */
export const HEAD_METHOD_ROLES: MethodRoles = (path) => {
  if (path.startsWith("/orion.v1.NodeControl/")) return ["node"];
  if (path.startsWith("/orion.v1.Builds/")) return ["client"];
  if (path.startsWith("/orion.v1.Blobs/")) return ["client", "node"];
  return undefined;
};

/** A node's blob server: its peers, which are nodes. */
export const PEER_METHOD_ROLES: MethodRoles = (path) => (path.startsWith("/orion.v1.Blobs/") ? ["node"] : undefined);

export interface AuthInterceptorOptions {
  policy: AuthPolicy;
  methodRoles: MethodRoles;
  logger: Logger;
  /** At most one log line per peer host in this window (default 10 s); the refusals in between are counted in the next one. */
  logWindowMs?: number;
  now?: () => number;
}

const ROLE_HINT = "nodes present --node-token or ORION_NODE_TOKEN, or a certificate with OU=orion-node; clients --token or ORION_TOKEN, or OU=orion-client";

/** Peers whose refusals are remembered for rate limiting; beyond this, entries older than the window are dropped. */
const MAX_TRACKED_PEERS = 1024;

export function authInterceptor(o: AuthInterceptorOptions): grpc.ServerInterceptor {
  const resolve = roleResolver(o.policy);
  const log = o.logger.child({ module: "auth" });
  const refusals = new RefusalLog(log, o.logWindowMs ?? 10_000, o.now ?? Date.now);
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            // Ending the call here leaves its body unread: grpc-js pauses the stream until the handler asks for a message.
            const refuse = (code: grpc.status, details: string) => {
              refusals.note(call.getPeer(), method.path, code, details);
              call.sendStatus({ code, details });
            };
            const r = resolve(metadata, call.getAuthContext()?.sslPeerCertificate);
            if ("refused" in r) return refuse(r.code, r.refused);
            const allowed = o.methodRoles(method.path) ?? [];
            if (!allowed.some((role) => r.roles.has(role))) {
              return refuse(
                grpc.status.PERMISSION_DENIED,
                `${method.path} is for ${allowed.length ? allowed.map((x) => `${x}s`).join(" and ") : "no caller"}; this caller's credentials are a ${[...r.roles].join(" and ")}'s (${ROLE_HINT})`,
              );
            }
            nextMetadata(metadata);
          },
        });
      },
    });
}

/** Refusals logged at most once per peer host per window, each line counting those it stood for. */
export class RefusalLog {
  private readonly peers = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  note(peer: string, method: string, code: number, reason: string): void {
    // A flood comes from many ports of one host: the host is the peer.
    const host = peer.replace(/:\d+$/, "");
    const t = this.now();
    const seen = this.peers.get(host);
    if (seen && t - seen.loggedAt < this.windowMs) {
      seen.suppressed++;
      return;
    }
    if (this.peers.size >= MAX_TRACKED_PEERS) {
      for (const [h, s] of this.peers) if (t - s.loggedAt >= this.windowMs) this.peers.delete(h);
    }
    this.log.warn({ peer, method, code: grpc.status[code] ?? code, reason, suppressed: seen?.suppressed ?? 0 }, "refused a call: authentication or role");
    if (this.peers.size < MAX_TRACKED_PEERS || seen) this.peers.set(host, { loggedAt: t, suppressed: 0 });
  }
}
