// dag-extract's public surface: find a build tree's graph (from its Makefile or compile database) and render it as JSON or Graphviz dot.

import { existsSync } from "node:fs";
import path from "node:path";
import { extractCompileDb } from "./compile-db.js";
import { ExtractError } from "./errors.js";
import type { BuildGraph } from "./graph.js";
import { extractMake } from "./make.js";

export type { BuildGraph, CommandKind, GraphCommand } from "./graph.js";
export { classify, isCompilerDriver, type Classified, type ExistsFn } from "./classify.js";
export { extractCompileDb, type CompileDbEntry } from "./compile-db.js";
export { ExtractError } from "./errors.js";
export { extractMake, parseMakeDryRun, type ExtractMakeOptions, type MakeLine } from "./make.js";
export { splitShellWords, joinShellWords, type ShellWords } from "./shell-words.js";

export interface ExtractOptions {
  /** Extra arguments for make (targets, VAR=value); ignored for a compile database. */
  makeArgs?: string[];
  /** List every command as if nothing were up to date (make -B). */
  always?: boolean;
}

const MAKEFILES = ["GNUmakefile", "makefile", "Makefile"];

/** Chooses the extractor: a Makefile wins (it knows links and generators), then compile_commands.json. */
export async function extractGraph(root: string, options: ExtractOptions = {}): Promise<BuildGraph> {
  const dir = path.resolve(root);
  if (MAKEFILES.some((name) => existsSync(path.join(dir, name)))) {
    return extractMake(dir, { makeArgs: options.makeArgs, always: options.always });
  }
  if (existsSync(path.join(dir, "compile_commands.json"))) return extractCompileDb(dir);
  throw new ExtractError(`no Makefile or compile_commands.json in ${dir}`);
}

/** The graph as `orion graph --format json` prints it: the BuildGraph itself. */
export function toJson(graph: BuildGraph): string {
  return JSON.stringify(graph, null, 2) + "\n";
}

/** The graph in Graphviz dot; edges point from a dependency to the command that waits for it, host steps are grey boxes. */
export function toDot(graph: BuildGraph): string {
  const out = ["digraph build {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"];
  for (const c of graph.commands) {
    const style = c.host ? ", style=filled, fillcolor=lightgrey" : "";
    out.push(`  ${c.id} [label=${dotString(c.label)}, tooltip=${dotString(c.kind)}${style}];`);
  }
  for (const c of graph.commands) for (const d of c.deps) out.push(`  ${d} -> ${c.id};`);
  out.push("}");
  return out.join("\n") + "\n";
}

function dotString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}
