// The role rules of auth.ts (tokens, certificate OUs, both together) and the per-peer rate limit of refusal logs.
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { Writable } from "node:stream";
import { roleResolver } from "./auth.js";
import { RefusalLog } from "./auth-interceptor.js";

const md = (token?: string) => {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set("authorization", `Bearer ${token}`);
  return m;
};
const cert = (ou?: string | string[]) => ({ subject: { CN: "x", ...(ou ? { OU: ou } : {}) } }) as unknown as PeerCertificate;
const roles = (r: ReturnType<ReturnType<typeof roleResolver>>) => ("roles" in r ? [...r.roles].sort() : r.code);

describe("roleResolver", () => {
  it("gives each token its role when both are set, and refuses a missing or wrong one", () => {
    const resolve = roleResolver({ clientToken: "c", nodeToken: "n" });
    expect(roles(resolve(md("c"), undefined))).toEqual(["client"]);
    expect(roles(resolve(md("n"), undefined))).toEqual(["node"]);
    expect(roles(resolve(md("x"), undefined))).toBe(grpc.status.UNAUTHENTICATED);
    expect(roles(resolve(md(), undefined))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("lets a lone shared token act as both (the old farm), a lone node token leave tokenless callers clients, no token limit nothing", () => {
    expect(roles(roleResolver({ clientToken: "c" })(md("c"), undefined))).toEqual(["client", "node"]);
    const nodeOnly = roleResolver({ nodeToken: "n" });
    expect(roles(nodeOnly(md(), undefined))).toEqual(["client"]);
    expect(roles(nodeOnly(md("n"), undefined))).toEqual(["node"]);
    expect(roles(roleResolver({})(md(), undefined))).toEqual(["client", "node"]);
  });

  it("reads a role from a certificate's OU, and with a token keeps only the roles both grant", () => {
    const open = roleResolver({});
    expect(roles(open(md(), cert("orion-node")))).toEqual(["node"]);
    expect(roles(open(md(), cert(["eng", "orion-client"])))).toEqual(["client"]);
    expect(roles(open(md(), cert("eng")))).toEqual(["client", "node"]);
    const shared = roleResolver({ clientToken: "c" });
    expect(roles(shared(md("c"), cert("orion-client")))).toEqual(["client"]);
    expect(roles(roleResolver({ clientToken: "c", nodeToken: "n" })(md("c"), cert("orion-node")))).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe("RefusalLog", () => {
  it("logs one line per peer host per window, counting the refusals it stood for", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) });
    let now = 0;
    const log = new RefusalLog(pino({}, sink), 10_000, () => now);
    for (let i = 0; i < 5; i++) log.note(`127.0.0.1:${4000 + i}`, "/m", grpc.status.UNAUTHENTICATED, "wrong token");
    log.note("10.0.0.9:1", "/m", grpc.status.UNAUTHENTICATED, "wrong token");
    now = 10_000;
    log.note("127.0.0.1:5000", "/m", grpc.status.PERMISSION_DENIED, "not a node");
    expect(lines.map((l) => [l.peer, l.suppressed, l.code])).toEqual([
      ["127.0.0.1:4000", 0, "UNAUTHENTICATED"],
      ["10.0.0.9:1", 0, "UNAUTHENTICATED"],
      ["127.0.0.1:5000", 4, "PERMISSION_DENIED"],
    ]);
  });
});
