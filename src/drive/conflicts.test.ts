import { describe, expect, it } from "vitest";
import { ConflictWatch, type StepSpan } from "./conflicts.js";

const step = (start: number, end: number, reads: string[], writes: string[]): StepSpan => ({
  label: "./gen.sh",
  start,
  end,
  reads: new Set(reads),
  writes: new Set(writes),
  rerun: async () => undefined,
});
const tool = (label: string, start: number, end: number, reads: string[], writes: string[]) => ({ label, start, end, reads: new Set(reads), writes: new Set(writes) });

describe("ConflictWatch", () => {
  it("finds a step and a tool call that overlapped, one writing what the other read, whichever ends first", () => {
    const w = new ConflictWatch();
    w.toolEnded(tool("CC main.o", 10, 20, ["/p/main.c", "/p/gen.h"], ["/p/main.o"]));
    w.stepEnded(step(5, 30, ["/p/gen.sh"], ["/p/gen.h"]));
    w.stepEnded(step(40, 60, ["/p/lib.a"], ["/p/out.txt"]));
    w.toolEnded(tool("AR lib.a", 50, 55, [], ["/p/lib.a"]));
    expect(w.found.map((c) => [c.writer, c.path])).toEqual([
      ["step", "/p/gen.h"],
      ["tool", "/p/lib.a"],
    ]);
    const { tools, steps } = w.repairs();
    expect(tools.map((t) => t.label)).toEqual(["CC main.o"]);
    expect(steps.map((s) => s.end)).toEqual([60]);
  });

  it("leaves alone what did not overlap, and what overlapped without sharing a written path", () => {
    const w = new ConflictWatch();
    w.stepEnded(step(0, 10, [], ["/p/gen.h"]));
    w.toolEnded(tool("CC main.o", 10, 20, ["/p/gen.h"], ["/p/main.o"]));
    w.toolEnded(tool("CC other.o", 5, 8, ["/p/other.c", "/p/common.h"], ["/p/other.o"]));
    w.stepEnded(step(6, 9, ["/p/common.h"], ["/p/log.txt"]));
    expect(w.found).toEqual([]);
  });
});
