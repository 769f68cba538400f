// Tests for choosing an extractor and rendering graphs as dot and JSON.

import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ExtractError, extractGraph, toDot, toJson, type BuildGraph } from "./index.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const temps: string[] = [];

afterAll(async () => {
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "orion-idx-"));
  temps.push(dir);
  return dir;
}

describe("extractGraph", () => {
  it("prefers the Makefile", async () => {
    const dir = path.join(await tempDir(), "gen-header");
    await cp(path.join(FIXTURES, "gen-header"), dir, { recursive: true });
    await writeFile(path.join(dir, "compile_commands.json"), "[]");
    const g = await extractGraph(dir, { always: true });
    expect(g.source).toBe("make");
    expect(g.commands).toHaveLength(4);
  });

  it("falls back to compile_commands.json", async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, "compile_commands.json"), JSON.stringify([{ directory: ".", file: "a.c", arguments: ["cc", "-c", "a.c"] }]));
    const g = await extractGraph(dir);
    expect(g.source).toBe("compile_commands");
    expect(g.commands.map((c) => c.label)).toEqual(["CC a.o"]);
    expect(g.notes).toHaveLength(1);
  });

  it("says what is missing when there is neither", async () => {
    const dir = await tempDir();
    await expect(extractGraph(dir)).rejects.toThrow(ExtractError);
    await expect(extractGraph(dir)).rejects.toThrow(`no Makefile or compile_commands.json in ${dir}`);
  });
});

describe("rendering", () => {
  const graph: BuildGraph = {
    root: "/r",
    source: "make",
    commands: [
      { id: "a1", kind: "script", label: 'RUN echo "x" \\ y', cwd: "", argv: [], line: "", inputs: [], outputs: [], deps: [], host: true },
      { id: "a2", kind: "compile", label: "CC a.o", cwd: "", argv: [], line: "", inputs: ["a.c"], outputs: ["a.o"], deps: ["a1"], host: false },
      { id: "a3", kind: "link", label: "LINK app", cwd: "", argv: [], line: "", inputs: ["a.o"], outputs: ["app"], deps: ["a1", "a2"], host: false },
    ],
  };

  it("writes well-formed dot with one node per command and one edge per dependency", () => {
    const dot = toDot(graph);
    const lines = dot.trimEnd().split("\n");
    expect(lines[0]).toBe("digraph build {");
    expect(lines.at(-1)).toBe("}");
    expect(dot).toContain(String.raw`a1 [label="RUN echo \"x\" \\ y", tooltip="script", style=filled, fillcolor=lightgrey];`);
    const edges = lines.filter((l) => l.includes("->")).map((l) => l.trim());
    expect(edges).toEqual(["a1 -> a2;", "a1 -> a3;", "a2 -> a3;"]);
    // Every quoted string closes: unescaped quotes pair up on each line.
    for (const l of lines) expect((l.replace(/\\./g, "").match(/"/g) ?? []).length % 2).toBe(0);
  });

  it("round-trips through JSON", () => {
    expect(JSON.parse(toJson(graph))).toEqual(graph);
  });
});
