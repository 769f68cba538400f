// Who a caller is: the roles (client, node) its token and its TLS client certificate grant; the client side adds the token to every call.
import { createHash, timingSafeEqual } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";

const HEADER = "authorization";
const SCHEME = "Bearer ";

/** Why a call's metadata is refused, or undefined when it may proceed (always, when no token is set). */
export type Authenticator = (metadata: grpc.Metadata) => string | undefined;

/** A caller builds (client) or runs leased actions and reports them (node). */
export type Role = "client" | "node";
const ALL_ROLES: readonly Role[] = ["client", "node"];

/** The subject OU a farm certificate names its role with (`-subj "/CN=name/OU=orion-node"`). */
const CERT_ROLE_OU: Record<Role, string> = { client: "orion-client", node: "orion-node" };

/**
 * What a server accepts. With both tokens, each grants its own role. With only `clientToken`, it grants both roles
 * (a farm set up before nodes had their own token; the head warns). With only `nodeToken`, it grants the node role and
 * a caller without a token is a client. With neither, any caller holds both roles as far as tokens go.
 */
export interface AuthPolicy {
  clientToken?: string;
  nodeToken?: string;
}

/** The roles a caller holds, or why it is refused: UNAUTHENTICATED for a missing or wrong token, PERMISSION_DENIED for credentials that grant nothing. */
export type CallerRoles = { roles: ReadonlySet<Role> } | { code: number; refused: string };

const hash = (s: string) => createHash("sha256").update(s).digest();

/** Checks a call's token and certificate against `policy` (tokens compared in constant time). */
export function roleResolver(policy: AuthPolicy): (metadata: grpc.Metadata, certificate: PeerCertificate | undefined) => CallerRoles {
  // Hashing both sides makes the compared buffers equal in length, so the comparison's time says nothing about a token.
  const client = policy.clientToken ? hash(policy.clientToken) : undefined;
  const node = policy.nodeToken ? hash(policy.nodeToken) : undefined;
  const both = new Set<Role>(ALL_ROLES);
  return (metadata, certificate) => {
    const byToken = tokenRoles(metadata);
    if ("refused" in byToken) return byToken;
    const byCert = certificateRoles(certificate);
    const roles = new Set([...byToken.roles].filter((r) => byCert.has(r)));
    if (roles.size === 0) {
      return { code: grpc.status.PERMISSION_DENIED, refused: `the token is a ${[...byToken.roles].join(" and ")}'s but the certificate is a ${[...byCert].join(" and ")}'s` };
    }
    return { roles };
  };

  function tokenRoles(metadata: grpc.Metadata): CallerRoles {
    if (!client && !node) return { roles: both };
    const value = metadata.get(HEADER)[0];
    if (typeof value !== "string" || !value.startsWith(SCHEME)) {
      if (client) return { code: grpc.status.UNAUTHENTICATED, refused: "this head requires a token (--token or ORION_TOKEN; a node's --node-token or ORION_NODE_TOKEN)" };
      return { roles: new Set<Role>(["client"]) };
    }
    const got = hash(value.slice(SCHEME.length));
    // Both comparisons always run: which one matched must not show in the time taken either.
    const isNode = node ? timingSafeEqual(got, node) : false;
    const isClient = client ? timingSafeEqual(got, client) : false;
    if (isNode) return { roles: new Set<Role>(["node"]) };
    if (isClient) return { roles: node ? new Set<Role>(["client"]) : both };
    return { code: grpc.status.UNAUTHENTICATED, refused: "wrong token (check --token or ORION_TOKEN; a node's --node-token or ORION_NODE_TOKEN)" };
  }
}

/** Roles a TLS client certificate names in its subject's OU; a certificate naming none (or no certificate) limits nothing. */
function certificateRoles(certificate: PeerCertificate | undefined): ReadonlySet<Role> {
  const ou = certificate?.subject?.OU as string | string[] | undefined;
  const units = ou === undefined ? [] : Array.isArray(ou) ? ou : [ou];
  const roles = new Set(ALL_ROLES.filter((r) => units.includes(CERT_ROLE_OU[r])));
  return roles.size ? roles : new Set(ALL_ROLES);
}

/** The old single-token check, kept for callers that have one shared token and no roles. */
export function tokenAuthenticator(token: string | undefined): Authenticator {
  const resolve = roleResolver({ clientToken: token });
  return (metadata) => {
    const r = resolve(metadata, undefined);
    return "refused" in r ? r.refused : undefined;
  };
}

/** Handlers behind the auth interceptor: it has already ruled on the call. */
export const alreadyAuthenticated: Authenticator = () => undefined;

/** Adds the token to the metadata of every call made through a client built with it. */
export function tokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(HEADER, SCHEME + token);
        next(metadata, listener);
      },
    });
}
