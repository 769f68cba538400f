// ORION_RECORD: one NDJSON line per compiler call the agent sees — what it was, what it read and wrote, how long it
// took and how the cache answered — so a tool (or `orion build`) can learn a project's graph from one real build.
import { appendFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Classification } from "./classify.js";

export type CallOutcome = "hit" | "miss" | "uncacheable" | "fallback";

/** What the service learned about one call while answering it. */
export interface CallNote {
  outcome: CallOutcome;
  /** Headers (as the compiler named them, relative to cwd or absolute), when the cache learned them. */
  headers?: string[];
  /** A miss compiled on the farm rather than here: true, or the node's name when the farm said it. */
  remote?: boolean | string;
  /** The compiler found for the call (absolute). */
  program?: string;
}

export interface CallRecord {
  type: "call";
  /** compile | depgen | link | other (-E, probes, anything else). */
  kind: string;
  cwd: string;
  argv: string[];
  /** Absolute paths of the files the call read: sources, forced includes, other inputs, and the headers when known. */
  reads: string[];
  /** Absolute paths of the files it wrote (-o, the depfile, -MF). */
  writes: string[];
  exitCode: number;
  outcome: CallOutcome;
  startedAt: string;
  ms: number;
}

export function callRecord(
  call: { argv: string[]; cwd: string },
  cls: Classification | undefined,
  note: CallNote,
  exitCode: number,
  startedMs: number,
  endedMs: number,
): CallRecord {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(call.cwd, p));
  const args = cls?.args;
  const reads = new Set<string>();
  const writes = new Set<string>();
  if (args) {
    for (const p of [...args.sources, ...args.forcedIncludes, ...args.inputs, ...(note.headers ?? [])]) if (p !== "-") reads.add(abs(p));
    if (args.kind === "depgen") {
      if (args.depOutput !== undefined) writes.add(abs(args.depOutput));
    } else {
      if (args.output !== undefined) writes.add(abs(args.output));
      if (args.depfile) writes.add(abs(args.depfile.path));
    }
  }
  return {
    type: "call",
    kind: args?.kind ?? "other",
    cwd: call.cwd,
    argv: call.argv,
    reads: [...reads],
    writes: [...writes],
    exitCode,
    outcome: note.outcome,
    startedAt: new Date(startedMs).toISOString(),
    ms: endedMs - startedMs,
  };
}

/**
 * Appends one line to `file` with O_APPEND; one write per line, so lines from calls answered concurrently (and from
 * several agents sharing the file) never interleave within a line.
 */
export function appendRecord(file: string, record: CallRecord): void {
  appendFileSync(file, `${JSON.stringify(record)}\n`);
}
