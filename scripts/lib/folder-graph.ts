// The folder import graph of src/ and dag-extract/ (non-test files): which folder imports which, and the first cycle if any.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** The trees whose folders the graph covers, relative to the repository root. */
export const GRAPH_ROOTS = ["src", "dag-extract"];

/** Folders generated from proto/: leaves by construction, left out of the graph. */
const GENERATED = ["src/gen"];

/** Folder name → the folders its non-test files import (itself excluded), sorted. */
export type FolderGraph = Map<string, string[]>;

const IMPORT_RE = /(?:^|[\s;])(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']|(?:^|[\s;])import\s*\(?\s*["']([^"']+)["']/g;

/** The relative module specifiers one TypeScript source imports or re-exports (comments stripped first). */
export function importSpecifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs: string[] = [];
  for (const m of code.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (spec !== undefined && spec.startsWith(".")) specs.push(spec);
  }
  return specs;
}

/** The graph's folder for a repository-relative path: `src/<name>` or `dag-extract`; undefined outside the graph. */
export function folderOf(repoPath: string): string | undefined {
  const parts = repoPath.split("/");
  if (parts[0] === "dag-extract") return "dag-extract";
  if (parts[0] === "src" && parts.length > 2) {
    const folder = `src/${parts[1]}`;
    return GENERATED.includes(folder) ? undefined : folder;
  }
  return undefined;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Reads every non-test .ts under the graph's roots and returns folder → imported folders. */
export function folderGraph(repoRoot: string): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const root of GRAPH_ROOTS) {
    for (const file of sourceFiles(join(repoRoot, root))) {
      const from = folderOf(relative(repoRoot, file).split(sep).join("/"));
      if (from === undefined) continue;
      const edges = new Set(graph.get(from) ?? []);
      for (const spec of importSpecifiers(readFileSync(file, "utf8"))) {
        const target = folderOf(relative(repoRoot, resolve(dirname(file), spec)).split(sep).join("/"));
        if (target !== undefined && target !== from) edges.add(target);
      }
      graph.set(from, [...edges].sort());
    }
  }
  return new Map([...graph].sort(([a], [b]) => a.localeCompare(b)));
}

/** The first cycle found, as a path that starts and ends at the same folder; undefined when the graph has none. */
export function findFolderCycle(graph: FolderGraph): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (folder: string): string[] | undefined => {
    state.set(folder, "open");
    stack.push(folder);
    for (const next of graph.get(folder) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(folder, "done");
    return undefined;
  };
  for (const folder of graph.keys()) {
    if (state.get(folder) === undefined) {
      const cycle = visit(folder);
      if (cycle) return cycle;
    }
  }
  return undefined;
}

/** The files of `from` that import something in `to`: names the edges of a cycle in a failure message. */
export function importersOf(repoRoot: string, from: string, to: string): string[] {
  const files: string[] = [];
  for (const root of GRAPH_ROOTS) {
    for (const file of sourceFiles(join(repoRoot, root))) {
      const rel = relative(repoRoot, file).split(sep).join("/");
      if (folderOf(rel) !== from) continue;
      const hits = importSpecifiers(readFileSync(file, "utf8")).some((spec) => folderOf(relative(repoRoot, resolve(dirname(file), spec)).split(sep).join("/")) === to);
      if (hits) files.push(rel);
    }
  }
  return files;
}
