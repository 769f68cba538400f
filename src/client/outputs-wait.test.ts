// Tests for the client's output writer waiting on actions whose outputs are not queued yet, and for which actions a host step waits on.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OrionError } from "../core/index.js";
import { SqliteBlobStore } from "../cas/sqlite-blob-store.js";
import { StatCache } from "../merkle/index.js";
import { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { OutputWriter } from "./outputs.js";
import { orderedBefore } from "./host-step-loop.js";

let dir: string;
let store: SqliteBlobStore;
let statCache: StatCache;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-outputs-"));
  store = new SqliteBlobStore({ dir: join(dir, "cas") });
  statCache = new StatCache(join(dir, "stat.db"));
  fs.mkdirSync(join(dir, "tree"));
});

afterEach(() => {
  store.close();
  statCache.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function resultWith(path: string, text: string): Promise<ActionResult> {
  return ActionResult.fromPartial({ outputFiles: [{ path, digest: await store.put(Buffer.from(text)), isExecutable: false }] });
}

describe("OutputWriter.whenWritten", () => {
  it("waits for an action whose outputs are queued only later, until they are in the tree", async () => {
    const w = new OutputWriter(store, statCache, join(dir, "tree"));
    let done = false;
    const waiting = w.whenWritten(["a1"]).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    w.write("a1", [], "", resultWith("lib.a", "archive"));
    await waiting;
    expect(fs.readFileSync(join(dir, "tree", "lib.a"), "utf8")).toBe("archive");
  });

  it("fails a wait for an action never queued once the writer is closed, instead of hanging", async () => {
    const w = new OutputWriter(store, statCache, join(dir, "tree"));
    const waiting = w.whenWritten(["a1", "a2"]);
    w.write("a1", [], "", resultWith("a.o", "a"));
    w.close(new OrionError("the build ended"));
    await expect(waiting).rejects.toThrow("the build ended");
    await expect(w.whenWritten(["a3"])).rejects.toThrow("the build ended");
    // What was queued is still waited for normally.
    await w.whenWritten(["a1"]);
  });
});

describe("orderedBefore", () => {
  it("names every action before a host step, transitively and through earlier host steps, but no host step", () => {
    const g = new Map([
      ["a1", { deps: [], host: false }],
      ["a2", { deps: [], host: false }],
      ["a3", { deps: ["a1", "a2"], host: false }],
      ["a4", { deps: ["a3"], host: true }],
      ["a5", { deps: ["a4"], host: false }],
      ["a6", { deps: ["a4", "a5"], host: true }],
      ["a7", { deps: ["a6"], host: false }],
    ]);
    expect(orderedBefore("a4", g).sort()).toEqual(["a1", "a2", "a3"]);
    expect(orderedBefore("a6", g).sort()).toEqual(["a1", "a2", "a3", "a5"]);
    expect(orderedBefore("a1", g)).toEqual([]);
  });
});
