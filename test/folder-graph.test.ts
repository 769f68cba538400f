// The folder import graph of src/ and dag-extract/ has no cycle: a failure names the cycle and the files behind each edge.
import { describe, expect, it } from "vitest";
import { findFolderCycle, folderGraph, importSpecifiers, importersOf } from "../scripts/lib/folder-graph.js";
import { REPO } from "./helpers.js";

describe("folder import graph", () => {
  it("reads static, re-export, type-only and dynamic imports, not comments", () => {
    const src = [
      'import { a } from "./a.js";',
      'import type { B } from "../b/index.js";',
      'export { c } from "../c/c.js";',
      'export * from "./d.js";',
      'const e = await import("../e/e.js");',
      'import "./f.js";',
      '// import { g } from "../g/g.js";',
      'import { readFileSync } from "node:fs";',
    ].join("\n");
    expect(importSpecifiers(src)).toEqual(["./a.js", "../b/index.js", "../c/c.js", "./d.js", "../e/e.js", "./f.js"]);
  });

  it("finds a cycle when there is one", () => {
    const graph = new Map([["src/a", ["src/b"]], ["src/b", ["src/c"]], ["src/c", ["src/a"]], ["src/d", ["src/a"]]]);
    expect(findFolderCycle(graph)).toEqual(["src/a", "src/b", "src/c", "src/a"]);
    expect(findFolderCycle(new Map([["src/a", ["src/b"]], ["src/b", []]]))).toBeUndefined();
  });

  it("has no cycle between the folders of src/ and dag-extract/", () => {
    const graph = folderGraph(REPO);
    expect(graph.size).toBeGreaterThan(10);
    const cycle = findFolderCycle(graph);
    const edges = (cycle ?? []).slice(1).map((to, i) => `${cycle![i]} → ${to} (${importersOf(REPO, cycle![i]!, to).join(", ")})`);
    expect(edges, `folder cycle:\n${edges.join("\n")}`).toEqual([]);
  });
});
