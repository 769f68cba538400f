import { describe, expect, it } from "vitest";
import { mapLimit, Slots } from "./concurrency.js";

describe("mapLimit", () => {
  it("keeps item order and never runs more than n at once", async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, x));
      running--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it("starts nothing after a failure, and throws it once what had started has settled", async () => {
    const started: number[] = [];
    let settled = 0;
    const run = mapLimit([0, 1, 2, 3, 4, 5], 2, async (x) => {
      started.push(x);
      await new Promise((r) => setTimeout(r, x === 0 ? 1 : 20));
      settled++;
      if (x === 0) throw new Error("first");
      return x;
    });
    await expect(run).rejects.toThrow("first");
    expect(started).toEqual([0, 1]);
    expect(settled).toBe(2);
  });
});

describe("Slots", () => {
  it("runs at most n at once, the waiting ones in the order they came, and frees a slot on failure", async () => {
    const slots = new Slots(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const job = (i: number, ms: number, fail = false) =>
      slots.run(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, ms));
        running--;
        if (fail) throw new Error(`job ${i}`);
        return i;
      });
    const results = await Promise.allSettled([job(0, 30, true), job(1, 40), job(2, 5), job(3, 5), job(4, 5)]);
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled", "fulfilled", "fulfilled", "fulfilled"]);
  });
});
