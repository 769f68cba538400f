// graphProblem and findCycle: duplicates, unknown dependencies, cycles of every length, and a deep chain without a stack overflow.
import { describe, expect, it } from "vitest";
import { findCycle, graphProblem } from "./detect-cycles.js";

const n = (id: string, ...deps: string[]) => ({ id, deps });

describe("findCycle", () => {
  it("finds none in a diamond", () => {
    expect(findCycle([n("a"), n("b", "a"), n("c", "a"), n("d", "b", "c")])).toBeUndefined();
  });

  it("names a self-loop, a pair and a longer ring", () => {
    expect(findCycle([n("a", "a")])).toEqual(["a", "a"]);
    expect(findCycle([n("a", "b"), n("b", "a")])).toEqual(["a", "b", "a"]);
    expect(findCycle([n("x"), n("a", "x", "c"), n("b", "a"), n("c", "b")])).toEqual(["a", "c", "b", "a"]);
  });

  it("walks a 20,000-long chain without overflowing the stack", () => {
    const chain = Array.from({ length: 20_000 }, (_, i) => (i === 0 ? n("t0") : n(`t${i}`, `t${i - 1}`)));
    expect(findCycle(chain)).toBeUndefined();
    chain[0] = n("t0", "t19999");
    expect(findCycle(chain)).toHaveLength(20_001);
  });
});

describe("graphProblem", () => {
  it("accepts a well-formed graph, repeated deps included", () => {
    expect(graphProblem([n("a"), n("b", "a", "a")])).toBeUndefined();
  });

  it("reports duplicates, then unknown dependencies, then cycles", () => {
    expect(graphProblem([n("a"), n("b"), n("a")])).toEqual({ kind: "duplicate", index: 2, id: "a" });
    expect(graphProblem([n("a"), n("b", "a", "zz")])).toEqual({ kind: "unknown-dep", index: 1, id: "b", dep: "zz" });
    expect(graphProblem([n("a", "b"), n("b", "a")])).toEqual({ kind: "cycle", path: ["a", "b", "a"] });
  });
});
