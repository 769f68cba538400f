// The node registry on its own, on a fake clock: warm-up names a root once and only to nodes with the build's toolchain; removal tells the head; silent nodes are evicted.
import { describe, expect, it } from "vitest";
import { FakeClock, silentLogger } from "../core/index.js";
import type { RegisterRequest } from "../gen/orion/v1/scheduler.js";
import { type CompileRoot, NodeRegistry } from "./node-registry.js";

const reg = (name: string, digest: string, advertise = ""): RegisterRequest => ({
  name,
  slots: 2,
  toolchains: [{ name: "gcc", digest, path: "/usr/bin/gcc" }],
  advertise,
  token: "",
  instanceId: `${name}-1`,
  sandbox: "bwrap",
});

function registry(roots: CompileRoot[] = [], nodeTtlMs?: number) {
  const clock = new FakeClock();
  const removed: string[] = [];
  const r = new NodeRegistry({ clock, logger: silentLogger, nodeTtlMs, onRemoved: (id, reason) => removed.push(`${id}: ${reason}`), contextByHash: () => undefined, compileRoots: () => roots });
  return { r, clock, removed };
}

describe("NodeRegistry", () => {
  it("names a running build's compile root to warm up once, and only to a node that has its toolchain", () => {
    const root = { hash: "ab".repeat(32), sizeBytes: 10 };
    const { r } = registry([{ root, toolchains: new Set(["d-gcc"]) }]);
    const gcc = r.caller("a", r.register(reg("a", "d-gcc")).session);
    const clang = r.caller("b", r.register(reg("b", "d-clang")).session);
    expect(r.rootsToWarm(clang)).toEqual([]);
    expect(r.rootsToWarm(gcc)).toEqual([root]);
    expect(r.warmUp(gcc, r.rootsToWarm(gcc))).toEqual([{ root, peers: [] }]);
    expect(r.rootsToWarm(gcc)).toEqual([]);
    r.noteContexts(clang, [root.hash]);
    expect(r.rootsToWarm(gcc)).toEqual([]);
    r.close();
  });

  it("names a peer holding a root whole, tells the head of a node leaving, and refuses a wrong session", () => {
    const { r, removed } = registry();
    const a = r.caller("a", r.register(reg("a", "d-gcc", "a:1")).session);
    const b = r.caller("b", r.register(reg("b", "d-gcc", "b:1")).session);
    r.noteContexts(a, ["cd".repeat(32)]);
    expect(r.peersFor(b, { inputRoot: { hash: "cd".repeat(32), sizeBytes: 1 } })).toEqual([{ nodeId: "a", address: "a:1", holdsRoot: true }]);
    expect(() => r.leave({ nodeId: "a", session: "00" })).toThrow(/not this node's session/);
    r.leave({ nodeId: "a", session: a.session.toString("hex") });
    expect(removed).toEqual(["a: node a stopped"]);
    expect(r.isCurrent(a)).toBe(false);
    expect(r.placeable("d-gcc")).toBe(true);
    expect(r.unplaceable("cc", "d-clang")).toMatch(/^no node has the toolchain for cc \(d-clang\); nodes: b \[gcc\]$/);
    r.close();
  });

  it("evicts a node silent past its TTL", () => {
    const { r, clock, removed } = registry([], 300);
    r.register(reg("a", "d-gcc"));
    clock.advance(500);
    expect(removed).toEqual([expect.stringMatching(/^a: node a silent for \d+ ms$/)]);
    expect(r.size).toBe(0);
    r.close();
  });
});
