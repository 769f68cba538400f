// Tests for finding the inputs a head's store lost, and waiting for its client to send them again.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EMPTY_DIGEST, FakeClock, digestKey, digestOf } from "../core/index.js";
import { createBlobStore, type BlobStore } from "../cas/index.js";
import { buildTree } from "../merkle/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { isMissingInputs, lostInputs, waitForBlobs } from "./lost-inputs.js";

let dir: string;
let store: BlobStore;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-lost-"));
  store = createBlobStore({ dir: join(dir, "cas") });
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function storedTree(files: Record<string, string>) {
  const entries = Object.entries(files).map(([p, text]) => [p, { digest: digestOf(text), executable: false }] as [string, { digest: ReturnType<typeof digestOf>; executable: boolean }]);
  const tree = buildTree(entries);
  for (const [, d] of tree.directories) await store.put(Directory.encode(d).finish());
  for (const text of Object.values(files)) if (text) await store.put(Buffer.from(text));
  return tree.root;
}

describe("lost inputs", () => {
  it("names the file blobs of a root the store no longer holds, once each, never the empty blob", async () => {
    const root = await storedTree({ "a.c": "int a;\n", "sub/b.c": "int b;\n", "sub/again.c": "int a;\n", "empty.h": "" });
    expect(await lostInputs(store, root)).toEqual([]);
    const a = digestOf("int a;\n");
    fs.rmSync(join(dir, "cas", "blobs", a.hash.slice(0, 2), a.hash), { force: true });
    expect((await lostInputs(store, root)).map(digestKey)).toEqual([digestKey(a)]);
    expect((await lostInputs(store, root)).some((d) => d.hash === EMPTY_DIGEST.hash)).toBe(false);
  });

  it("names nothing when the tree itself cannot be read", async () => {
    expect(await lostInputs(store, digestOf("no such directory"))).toEqual([]);
  });

  it("waits until every blob is back, or gives up at its deadline", async () => {
    const clock = new FakeClock();
    const d = digestOf("comes back");
    let settled: boolean | undefined;
    void waitForBlobs(store, [d], clock, 1_000).then((ok) => (settled = ok));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBeUndefined();
    await store.put(Buffer.from("comes back"));
    for (let i = 0; i < 20 && settled === undefined; i++) {
      clock.advance(50);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(settled).toBe(true);
    let late: boolean | undefined;
    void waitForBlobs(store, [digestOf("never")], clock, 200).then((ok) => (late = ok));
    for (let i = 0; i < 20 && late === undefined; i++) {
      clock.advance(50);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(late).toBe(false);
  });

  it("tells a node's missing-input failure from other failures", () => {
    expect(isMissingInputs("input add.c (abc/3) missing from the store")).toBe(true);
    expect(isMissingInputs("input root directory abc/3 is missing from the store")).toBe(true);
    expect(isMissingInputs("exit code 1")).toBe(false);
  });
});
