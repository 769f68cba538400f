// Reads what a host step touched from the preload tracer's log (native/trace/orion-trace.c, preloaded into every process
// of the step): the same accesses trace.ts reads from strace, already resolved to absolute paths by the processes
// themselves. Also says which programs the preload cannot reach, so a step started by one is not trusted to its trace.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import path from "node:path";
import type { TreeEntry } from "../merkle/index.js";
import type { Access, MakeComparisons, TraceResult } from "./trace.js";

/** The tracer's one-letter ops (orion-trace.c writes `<op>\t<absolute path>\n`; `u\t<reason>` for untraceable). */
const OPS: Record<string, (p: string) => Access> = {
  r: (p) => ({ op: "read", path: p }),
  w: (p) => ({ op: "write", path: p, fresh: false }),
  f: (p) => ({ op: "write", path: p, fresh: true }),
  l: (p) => ({ op: "list", path: p }),
  a: (p) => ({ op: "absent", path: p }),
  p: (p) => ({ op: "present", path: p }),
  d: (p) => ({ op: "remove", path: p }),
  m: (p) => ({ op: "make", path: p }),
};

/**
 * `env` with the preload tracer in it: the library first in LD_PRELOAD, the trace file its processes append to, and
 * `sinceNs`, the kernel's file clock when the run started (files changed after it have no start content to record).
 */
export function preloadEnv(env: NodeJS.ProcessEnv, library: string, traceFile: string, sinceNs?: bigint, makeDebug = false): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, LD_PRELOAD: env.LD_PRELOAD ? `${library}:${env.LD_PRELOAD}` : library, ORION_TRACE_FILE: traceFile };
  if (sinceNs !== undefined) out.ORION_TRACE_SINCE = String(sinceNs);
  // make runs with MAKE_DEBUG_FLAG: the tracer records its comparisons from that output and keeps it off the terminal.
  if (makeDebug) out[MAKE_DEBUG_VAR] = "1";
  return out;
}

/** The flag make gets when its comparisons are recorded (the tracer reads them from its debug output). */
export const MAKE_DEBUG_FLAG = "--debug=v";
const MAKE_DEBUG_VAR = "ORION_TRACE_MAKE_DEBUG";

/**
 * Whether make's own arguments ask for output the tracer would hide or read (its debug output, database, version):
 * long options by any prefix make accepts, short ones in a cluster up to the first that takes a value (`-Cdir`, `-j4`).
 * native/trace/orion-trace.c's make_asked_to_print() reads a running make's argv by the same rule.
 */
export function makeArgsSpeak(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") break;
    if (/^--(v|h|print-da|deb)/.test(a)) return true;
    if (a.length < 2 || a[0] !== "-" || a[1] === "-") continue;
    for (const c of a.slice(1)) {
      if ("CfIjloWOE".includes(c)) break;
      if ("pvhd".includes(c)) return true;
    }
  }
  return false;
}

/** `env` as it was before preloadEnv: the tracer's library and its trace file taken out again. */
export function withoutPreload(env: Record<string, string>, library: string): Record<string, string> {
  if (env.ORION_TRACE_FILE === undefined && env[MAKE_DEBUG_VAR] === undefined && !env.LD_PRELOAD?.includes(library)) return env;
  const out = { ...env };
  delete out.ORION_TRACE_FILE;
  delete out.ORION_TRACE_SINCE;
  // A tool or a step is not make's debug output: MAKEFLAGS as the user's make would pass it (a nested make prints
  // nothing more, and keys do not change).
  if (out[MAKE_DEBUG_VAR] !== undefined) {
    delete out[MAKE_DEBUG_VAR];
    if (out.MAKEFLAGS !== undefined) out.MAKEFLAGS = out.MAKEFLAGS.replace(/(^| )--debug=v(?= |$)/, "").trimStart();
  }
  const rest = (out.LD_PRELOAD ?? "").split(/[: ]/).filter((l) => l && l !== library);
  if (rest.length) out.LD_PRELOAD = rest.join(":");
  else delete out.LD_PRELOAD;
  return out;
}

/** Parses a whole preload trace: the accesses in the order they were appended, or why the trace is incomplete. */
export function parsePreloadTrace(log: string): TraceResult {
  const accesses: Access[] = [];
  const startContent = new Map<string, TreeEntry>();
  /** Paths some process of the step changed already: a later old-content record is not the start's content. */
  const changed = new Set<string>();
  let make: MakeComparisons | undefined;
  /** Per process id: processes called make minus GNU makes that spoke (each must come to 0). */
  const unspoken = new Map<string, number>();
  for (const line of log.split("\n")) {
    if (line === "") continue;
    const op = line[0]!;
    const rest = line.slice(2);
    const malformed = () => ({ accesses, untraceable: `a malformed trace line: ${JSON.stringify(line.slice(0, 80))}` });
    if (line[1] !== "\t") return malformed();
    if (op === "u") return { accesses, untraceable: rest };
    if (op === "k" || op === "g" || op === "c") {
      // `k\t<pid>` a process called make, `g\t<pid>` a GNU make that spoke its comparisons, `c\t<n|o|m>\t<prerequisite>\t<target>`
      // one of them (newer, older, or the prerequisite missing).
      make ??= { compared: [], complete: true };
      if (op !== "c") unspoken.set(rest, (unspoken.get(rest) ?? 0) + (op === "k" ? 1 : -1));
      else {
        const m = /^([nom])\t(\/[^\t]*)\t(\/[^\t]*)$/.exec(rest);
        if (!m) make.complete = false;
        else if (m[1] === "m") (make.missing ??= []).push([path.resolve(m[2]!), path.resolve(m[3]!)]);
        else make.compared.push([path.resolve(m[2]!), path.resolve(m[3]!), m[1] === "n"]);
      }
      continue;
    }
    if (op === "o") {
      // `o\t<sha256>:<size>:<0|1 executable>:<absolute path>`, just before that path's in-place write record.
      const m = /^([0-9a-f]{64}):(\d+):([01]):(\/.*)$/.exec(rest);
      if (!m) return malformed();
      const abs = path.resolve(m[4]!);
      if (!changed.has(abs) && !startContent.has(abs)) startContent.set(abs, { digest: { hash: m[1]!, sizeBytes: Number(m[2]) }, executable: m[3] === "1" });
      continue;
    }
    const access = OPS[op];
    if (!access || !rest.startsWith("/")) return malformed();
    // Resolved as trace.ts resolves strace's paths: "/r/d/./x/" names "/r/d/x".
    const a = access(path.resolve(rest));
    if (a.op === "write" || a.op === "remove" || a.op === "make") changed.add(a.path);
    accesses.push(a);
  }
  if (make && [...unspoken.values()].some((n) => n !== 0)) make.complete = false;
  return { accesses, ...(startContent.size ? { startContent } : {}), ...(make ? { make } : {}) };
}

/** The ELF machine this process runs on: a program built for another is not reached by this build of the library. */
const MACHINE: Partial<Record<string, number>> = { x64: 62, arm64: 183 };
const PT_INTERP = 3;
const PT_NOTE = 4;

/**
 * Why the preload cannot see what `program` does, or undefined: a static, 32-bit or foreign program (ld.so never
 * loads the library), a Go one (it makes its own system calls), a set-user-ID one (ld.so ignores LD_PRELOAD). Follows
 * `#!` interpreters as the kernel does. The library checks every program a step execs the same way; this is for the
 * step's own first program, started from Node.
 */
export function preloadBlindSpot(program: string, depth = 0): string | undefined {
  let fd: number;
  try {
    fd = openSync(program, "r");
  } catch {
    return undefined; // not there, or not readable: the step fails to start, or its exec says so
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    if ((st.mode & 0o4000 && st.uid !== process.geteuid?.()) || (st.mode & 0o2000 && st.gid !== process.getegid?.())) return `a set-user-ID program: ${program}`;
    const head = Buffer.alloc(256);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n >= 2 && head.toString("latin1", 0, 2) === "#!") {
      const interpreter = head.toString("latin1", 2, n).trimStart().split(/[ \t\n]/)[0];
      // A relative interpreter is the exec'ing process's to resolve; the step's own are absolute in practice.
      return interpreter?.startsWith("/") && depth < 4 ? preloadBlindSpot(interpreter, depth + 1) : undefined;
    }
    if (n < 64 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
    if (head[4] !== 2 || head.readUInt16LE(18) !== MACHINE[process.arch]) return `a program for another ELF class or machine: ${program}`;
    const phoff = Number(head.readBigUInt64LE(32));
    const entry = head.readUInt16LE(54);
    const count = head.readUInt16LE(56);
    const table = Buffer.alloc(entry * count);
    readSync(fd, table, 0, table.length, phoff);
    const headers = Array.from({ length: count }, (_, i) => ({
      type: table.readUInt32LE(i * entry),
      offset: Number(table.readBigUInt64LE(i * entry + 8)),
      size: Number(table.readBigUInt64LE(i * entry + 32)),
    }));
    if (!headers.some((h) => h.type === PT_INTERP)) return `a static program: ${program}`;
    for (const h of headers.filter((x) => x.type === PT_NOTE)) if (hasGoNote(fd, h.offset, Math.min(h.size, 1024))) return `a Go program: ${program}`;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** A note segment holding Go's build-id note (owner "Go\0\0", type 4). */
function hasGoNote(fd: number, offset: number, size: number): boolean {
  const notes = Buffer.alloc(size);
  const n = readSync(fd, notes, 0, size, offset);
  for (let at = 0; at + 12 <= n; ) {
    const nameSize = notes.readUInt32LE(at);
    const descSize = notes.readUInt32LE(at + 4);
    if (nameSize === 4 && notes.readUInt32LE(at + 8) === 4 && notes.toString("latin1", at + 12, at + 16) === "Go\0\0") return true;
    at += 12 + ((nameSize + 3) & ~3) + ((descSize + 3) & ~3);
  }
  return false;
}
