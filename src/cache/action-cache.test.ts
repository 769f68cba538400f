// Tests for the SQLite action cache and the lookups built on it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { digestOf, digestKey, type Digest } from "../core/digest.js";
import { ActionResult, CompileManifest } from "../gen/orion/v1/remote_execution.js";
import { MAX_MANIFESTS_PER_KEY, SqliteActionCache, lookupCompile, lookupValid } from "./action-cache.js";
import { compileLevel2Key } from "./keys.js";

const OBJ = digestOf("object bytes");
const ERR = digestOf("warning: x\n");

function result(exitCode = 0): ActionResult {
  return ActionResult.fromPartial({
    exitCode,
    outputFiles: [{ path: "a.o", digest: OBJ, isExecutable: false }],
    stderrDigest: ERR,
    executionMetadata: { worker: "node-1" },
  });
}

function manifest(headers: [string, string][]): CompileManifest {
  return CompileManifest.fromPartial({ headers: headers.map(([path, body]) => ({ path, digest: digestOf(body) })) });
}

/** A hand-written store holding exactly the digests given. */
class FakeStore {
  readonly held = new Set<string>();
  constructor(ds: Digest[]) {
    for (const d of ds) this.held.add(digestKey(d));
  }
  async findMissing(ds: Digest[]): Promise<Digest[]> {
    return ds.filter((d) => !this.held.has(digestKey(d)));
  }
}

describe("SqliteActionCache", () => {
  it("round-trips a result through a file and survives reopening", () => {
    const file = join(mkdtempSync(join(tmpdir(), "orion-ac-")), "ac.db");
    const c = new SqliteActionCache(file);
    expect(c.getResult("k")).toBeUndefined();
    c.putResult("k", result());
    expect(c.getResult("k")).toEqual(result());
    c.close();
    const again = new SqliteActionCache(file);
    expect(again.getResult("k")).toEqual(result());
    expect(again.stats()).toEqual({ results: 1, manifests: 0 });
    again.clear();
    expect(again.stats()).toEqual({ results: 0, manifests: 0 });
    again.close();
  });

  it("does not store a failed result", () => {
    const c = new SqliteActionCache(":memory:");
    c.putResult("k", result(1));
    expect(c.getResult("k")).toBeUndefined();
    expect(c.stats().results).toBe(0);
    c.close();
  });

  it("dedupes manifests, newest first, at most 16 per key", () => {
    const clock = new FakeClock();
    const c = new SqliteActionCache(":memory:", { clock });
    const m1 = manifest([["b.h", "b"], ["a.h", "a"]]);
    const m2 = manifest([["a.h", "a2"]]);
    c.addManifest("l1", m1);
    clock.advance(1);
    c.addManifest("l1", m2);
    // Same headers in another order: the same manifest, moved to the front.
    c.addManifest("l1", manifest([["a.h", "a"], ["b.h", "b"]]));
    const got = c.getManifests("l1");
    expect(got).toHaveLength(2);
    expect(got[0]!.headers.map((h) => h.path)).toEqual(["a.h", "b.h"]);
    expect(got[1]).toEqual(m2);
    expect(c.getManifests("other")).toEqual([]);
    for (let i = 0; i < 20; i++) c.addManifest("l1", manifest([["n.h", String(i)]]));
    const kept = c.getManifests("l1");
    expect(kept).toHaveLength(MAX_MANIFESTS_PER_KEY);
    expect(kept[0]).toEqual(manifest([["n.h", "19"]]));
    expect(kept[15]).toEqual(manifest([["n.h", "4"]]));
    expect(c.stats().manifests).toBe(16);
    c.close();
  });
});

describe("lookupValid", () => {
  it("returns a hit whose blobs are all present", async () => {
    const c = new SqliteActionCache(":memory:");
    c.putResult("k", result());
    expect(await lookupValid(c, new FakeStore([OBJ, ERR]), "k")).toEqual(result());
    expect(await lookupValid(c, new FakeStore([OBJ, ERR]), "absent")).toBeUndefined();
    c.close();
  });
  it("treats a hit with a missing blob as a miss", async () => {
    const c = new SqliteActionCache(":memory:");
    c.putResult("k", result());
    expect(await lookupValid(c, new FakeStore([OBJ]), "k")).toBeUndefined();
    expect(await lookupValid(c, new FakeStore([ERR]), "k")).toBeUndefined();
    c.close();
  });
  it("needs no blob for empty or inlined outputs", async () => {
    const c = new SqliteActionCache(":memory:");
    c.putResult("k", ActionResult.fromPartial({
      outputFiles: [{ path: "a.o", digest: OBJ, contents: Buffer.from("object bytes") }],
      stdoutDigest: digestOf(""),
    }));
    expect(await lookupValid(c, new FakeStore([]), "k")).toBeDefined();
    c.close();
  });
});

describe("lookupCompile", () => {
  it("matches the manifest whose headers still have their digests and probes", async () => {
    const c = new SqliteActionCache(":memory:");
    const store = new FakeStore([OBJ, ERR]);
    const old = manifest([["a.h", "v1"], ["b.h", "b"]]);
    const cur = manifest([["a.h", "v2"], ["b.h", "b"]]);
    c.addManifest("L1", old);
    c.addManifest("L1", cur);
    let probes = ["a.h", "b.h"];
    const l2old = compileLevel2Key("L1", old.headers.map((h) => ({ path: h.path, digest: h.digest! })), probes);
    c.putResult(l2old, result());
    const tree = new Map<string, Digest>([["a.h", digestOf("v1")], ["b.h", digestOf("b")]]);
    const look = () => lookupCompile(c, store, "L1", (p) => tree.get(p), () => probes);
    expect(await look()).toEqual(result());

    // A new shadowing header changes the probes: a miss.
    probes = ["a.h", "b.h", "inc/a.h"];
    expect(await look()).toBeUndefined();
    probes = ["a.h", "b.h"];

    // A header edit: no manifest matches.
    tree.set("a.h", digestOf("v3"));
    expect(await look()).toBeUndefined();

    // Matches the newer manifest, which has no result yet: a miss.
    tree.set("a.h", digestOf("v2"));
    expect(await look()).toBeUndefined();

    // A deleted header cannot match.
    tree.set("a.h", digestOf("v1"));
    tree.delete("b.h");
    expect(await look()).toBeUndefined();
  });
});
