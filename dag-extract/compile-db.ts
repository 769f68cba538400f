// Builds a graph from a compile database (compile_commands.json): one cacheable compile per entry, then the project's own make for everything else.
//
// A compile database lists compiles only: no links, archives or generated files. So
// the graph ends with one host step running `make` in the root after every compile.
// The compiles land first, so make finds the objects newer than their sources and
// only does the rest (archives, links, generators). A project whose compiles need a
// generated file first (e.g. a configure-made header) is not served by this path;
// extracting from its Makefile is.

import { existsSync } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
import path from "node:path";
import { classify, withExplicitOutput } from "./classify.js";
import { commandId, linkDependencies } from "./deps.js";
import { ExtractError } from "./errors.js";
import type { BuildGraph, GraphCommand } from "./graph.js";
import { rootRelative, rootRelativeDir } from "./paths.js";
import { joinShellWords, splitShellWords } from "./shell-words.js";

/** One entry of a compile database, as clang's JSON Compilation Database format defines it. */
export interface CompileDbEntry {
  /** The compile's working directory: absolute, or (as some generators write it) relative to the root. */
  directory: string;
  /** The main source. Unused: generators disagree on what it is relative to; argv's own source is unambiguous. */
  file: string;
  arguments?: string[];
  command?: string;
  /** The object file, when the generator records it. Unused: argv decides what the compiler really writes. */
  output?: string;
}

export async function extractCompileDb(root: string, file = "compile_commands.json"): Promise<BuildGraph> {
  const absRoot = await realpath(path.resolve(root)).catch((cause: unknown) => {
    throw new ExtractError(`cannot read build directory ${root}`, { cause });
  });
  const dbPath = path.resolve(absRoot, file);
  let entries: unknown;
  try {
    entries = JSON.parse(await readFile(dbPath, "utf8"));
  } catch (cause) {
    throw new ExtractError(`cannot read compile database ${dbPath}: ${(cause as Error).message}`, { cause });
  }
  if (!Array.isArray(entries)) throw new ExtractError(`${dbPath}: a compile database must be a JSON array`);
  const { commands, notes } = commandsFromCompileDb(absRoot, entries.map((e, i) => checkEntry(dbPath, e, i)));
  return { root: absRoot, source: "compile_commands", commands, ...(notes.length ? { notes } : {}) };
}

function checkEntry(dbPath: string, e: unknown, index: number): CompileDbEntry {
  const entry = e as Partial<CompileDbEntry> | null;
  const ok =
    typeof entry === "object" && entry !== null &&
    typeof entry.directory === "string" && typeof entry.file === "string" &&
    (Array.isArray(entry.arguments) ? entry.arguments.every((a) => typeof a === "string") : typeof entry.command === "string") &&
    (entry.output === undefined || typeof entry.output === "string");
  if (!ok) throw new ExtractError(`${dbPath}: entry ${index} needs string "directory" and "file" and "arguments" or "command"`);
  return entry as CompileDbEntry;
}

/** The build files that run the rest of a build (links, generators), by the tool that reads them. */
const BUILD_TOOLS: [file: string, argv: string[]][] = [
  ["GNUmakefile", ["make"]],
  ["makefile", ["make"]],
  ["Makefile", ["make"]],
  ["build.ninja", ["ninja"]],
];

/**
 * One compile action per entry (host step when not a cacheable compile), then the build tool the root has (make or
 * ninja) for the rest. With neither, the graph is the compiles alone, and a note says that nothing links them.
 */
function commandsFromCompileDb(root: string, entries: readonly CompileDbEntry[]): { commands: GraphCommand[]; notes: string[] } {
  const commands = entries.map((entry, index) => dbCommand(root, entry, commandId(index)));
  const tool = BUILD_TOOLS.find(([file]) => existsSync(path.join(root, file)))?.[1];
  if (!tool) {
    linkDependencies(commands);
    const notes = [`${root} has compile_commands.json but no Makefile or build.ninja: its ${entries.length} compiles are built, nothing links them`];
    return { commands, notes };
  }
  commands.push({
    id: commandId(commands.length),
    kind: "other",
    label: `RUN ${tool.join(" ")}`,
    cwd: "",
    argv: tool,
    line: tool.join(" "),
    inputs: [],
    outputs: [],
    deps: [],
    host: true,
  });
  linkDependencies(commands);
  return { commands, notes: [] };
}

function dbCommand(root: string, entry: CompileDbEntry, id: string): GraphCommand {
  const cwd = rootRelativeDir(root, path.resolve(root, entry.directory));
  const absCwd = path.resolve(root, cwd);
  const split = entry.arguments ? { words: entry.arguments, needsShell: false } : splitShellWords(entry.command!);
  const line = entry.command ?? joinShellWords(entry.arguments!);
  const c = classify(split.words, (p) => existsSync(path.resolve(absCwd, p)));
  const outputs = c.outputs.map((p) => rootRelative(root, cwd, p));
  // A sandbox cannot write outside the tree, so such a compile runs in place.
  if (split.needsShell || c.kind !== "compile" || outputs.some((o) => path.isAbsolute(o))) {
    return {
      id,
      kind: split.needsShell ? "script" : c.kind,
      label: `RUN ${line.slice(0, 60)}`,
      cwd,
      argv: split.needsShell ? ["/bin/sh", "-c", line] : [...split.words],
      line,
      inputs: [],
      outputs: [],
      deps: [],
      host: true,
    };
  }
  return {
    id,
    kind: "compile",
    label: `${c.cxx ? "CXX" : "CC"} ${outputs[0]}`,
    cwd,
    argv: withExplicitOutput(split.words, c),
    line,
    inputs: c.inputs.map((p) => rootRelative(root, cwd, p)),
    outputs,
    deps: [],
    host: false,
  };
}
