// What the head remembers of who holds which blob: bytes per node in one pass, forgetting a node, the size bound.
import { describe, expect, it } from "vitest";
import { BlobHolders } from "./blob-holders.js";

const d = (tag: string, sizeBytes: number) => ({ hash: tag.padEnd(64, "0"), sizeBytes });

describe("BlobHolders", () => {
  it("sums each node's bytes of the asked blobs (each distinct blob once), and forgets a node whole", () => {
    const h = new BlobHolders();
    h.add("a", [d("x", 100), d("y", 10), d("e", 0)]);
    h.add("b", [d("y", 10)]);
    expect(h.bytesByNode([d("x", 100), d("y", 10), d("y", 10), d("z", 5)])).toEqual(new Map([["a", 110], ["b", 10]]));
    h.forget("a");
    expect(h.bytesByNode([d("x", 100), d("y", 10)])).toEqual(new Map([["b", 10]]));
    expect(h.size).toBe(1);
  });

  it("keeps at most `limit` blobs, forgetting the least recently reported first", () => {
    const h = new BlobHolders(2);
    h.add("a", [d("1", 1), d("2", 1)]);
    h.add("a", [d("1", 1)]); // reported again: now the newest
    h.add("b", [d("3", 1)]);
    expect([...h.bytesByNode([d("1", 1), d("2", 1), d("3", 1)])]).toEqual([["a", 1], ["b", 1]]);
    expect(h.size).toBe(2);
  });
});
