// The head's membership rules on a fake clock: unique names, a restart keeping its name, eviction after the TTL, leaving.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock, Status, sequentialIds, silentLogger } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { SqliteActionCache } from "../cache/index.js";
import type { RegisterRequest } from "../gen/orion/v1/scheduler.js";
import { Head } from "./head.js";

let dir: string;
let store: BlobStore;
let cache: SqliteActionCache;
let clock: FakeClock;
let head: Head;

const reg = (name: string, instanceId: string): RegisterRequest => ({
  name,
  slots: 2,
  toolchains: [{ name: "gcc", digest: "d-gcc", path: "/usr/bin/gcc" }],
  advertise: "",
  token: "",
  instanceId,
});

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-head-"));
  store = createBlobStore({ dir: join(dir, "cas") });
  cache = new SqliteActionCache(join(dir, "ac.db"));
  clock = new FakeClock();
  head = new Head({ store, cache, clock, ids: sequentialIds("l"), logger: silentLogger, externalDigest: async () => undefined, heartbeatMs: 100, nodeTtlMs: 300 });
});

afterEach(() => {
  head.close();
  cache.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const names = async () => (await head.getStatus()).nodes.map((n) => n.name).sort();

describe("Head membership", () => {
  it("makes names unique, but gives a restarted node (same instance id) its own name back", async () => {
    expect((await head.register(reg("box", "a"))).nodeId).toBe("box");
    expect((await head.register(reg("box", "b"))).nodeId).toBe("box-2");
    // "a" restarts without having left: it replaces its stale registration rather than becoming box-3.
    expect((await head.register(reg("box", "a"))).nodeId).toBe("box");
    expect(await names()).toEqual(["box", "box-2"]);
  });

  it("evicts a node silent past its TTL; heartbeats keep one alive; the evicted one hears NOT_FOUND", async () => {
    await head.register(reg("quiet", "q"));
    await head.register(reg("chatty", "c"));
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      await head.heartbeat({ nodeId: "chatty", running: 1, load: 0 });
    }
    expect(await names()).toEqual(["chatty"]);
    expect((await head.getStatus()).nodes[0]!.running).toBe(1);
    await expect(head.heartbeat({ nodeId: "quiet", running: 0, load: 0 })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(head.lease({ nodeId: "quiet", maxActions: 1, waitMs: 0 })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    // Coming back, it registers under its old name.
    expect((await head.register(reg("quiet", "q"))).nodeId).toBe("quiet");
  });

  it("forgets a node that leaves, at once", async () => {
    await head.register(reg("n", "x"));
    await head.leave({ nodeId: "n" });
    expect(await names()).toEqual([]);
    expect((await head.register(reg("n", "y"))).nodeId).toBe("n");
  });

  it("marks a node silent past half its TTL in status", async () => {
    await head.register(reg("n", "x"));
    clock.advance(200);
    expect((await head.getStatus()).nodes[0]).toMatchObject({ name: "n", state: "silent", lastSeenMsAgo: 200, slots: 2, toolchains: ["gcc"] });
  });
});
