// Tests for deriving dependencies from shared files and host-step barriers.

import { describe, expect, it } from "vitest";
import { commandId, linkDependencies } from "./deps.js";
import type { GraphCommand } from "./graph.js";

function cmd(index: number, inputs: string[], outputs: string[], host = false): GraphCommand {
  return { id: commandId(index), kind: host ? "script" : "compile", label: "", cwd: "", argv: [], line: "", inputs, outputs, deps: [], host };
}

describe("linkDependencies", () => {
  it("links readers to the latest writer only", () => {
    const cs = [cmd(0, ["a.c"], ["a.o"]), cmd(1, ["b.c"], ["b.o"]), cmd(2, ["a.o", "b.o"], ["x.a"]), cmd(3, ["main.o", "x.a"], ["app"])];
    linkDependencies(cs);
    expect(cs.map((c) => c.deps)).toEqual([[], [], ["a1", "a2"], ["a3"]]);
  });

  it("orders two writers of one file and a later writer after earlier readers", () => {
    const cs = [cmd(0, [], ["x.o"]), cmd(1, ["x.o"], ["x.a"]), cmd(2, [], ["x.o"])];
    linkDependencies(cs);
    expect(cs[2]!.deps).toEqual(["a1", "a2"]);
  });

  it("makes host steps barriers in both directions", () => {
    const cs = [cmd(0, [], ["a.o"]), cmd(1, [], ["b.o"]), cmd(2, [], [], true), cmd(3, [], ["c.o"]), cmd(4, [], [], true), cmd(5, ["a.o"], ["app"])];
    linkDependencies(cs);
    expect(cs.map((c) => c.deps)).toEqual([[], [], ["a1", "a2"], ["a3"], ["a3", "a4"], ["a5"]]);
  });
});
