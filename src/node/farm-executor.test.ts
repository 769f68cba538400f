// The farm executor's warm-up, through its input chain's queue: one root at a time, the latest first, a superseded
// one dropped — and every root waiting or in progress told to the head as held, so it is not named again.
import { describe, expect, it } from "vitest";
import type { BlobStore } from "../cas/index.js";
import type { Digest } from "../core/index.js";
import { FarmExecutor } from "./farm-executor.js";
import { InputChain } from "./input-chain.js";

const root = (tag: string): Digest => ({ hash: tag.padEnd(64, "0"), sizeBytes: 1 });

describe("FarmExecutor warm-up", () => {
  it("warms one root at a time, skipping those superseded while it waited", async () => {
    const started: string[] = [];
    const finish: (() => void)[] = [];
    const inner = {
      execute: () => Promise.reject(new Error("not here")),
      contexts: () => [],
      warmContext: (r: Digest) => {
        started.push(r.hash[0]!);
        return new Promise<void>((resolve) => finish.push(resolve));
      },
    };
    const inputs = new InputChain({ local: {} as BlobStore });
    const ex = new FarmExecutor({ inner, toolchains: [], local: {} as BlobStore, remote: {} as BlobStore, inputs });
    ex.warm(root("a"), []);
    ex.warm(root("b"), []);
    ex.warm(root("c"), []);
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(["a"]);
    expect(ex.contexts().map((h) => h[0]).sort()).toEqual(["a", "c"]);
    finish.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(["a", "c"]);
    finish.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(ex.contexts()).toEqual([]);
  });
});
