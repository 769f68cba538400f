// The whole build as one cached step. A make-driven build that started from a tree holding none of its outputs is
// remembered once it succeeds: what every part of it read (make and the lines it ran in its shell, traced by the
// preload tracer; each tool call's inputs as its key named them; each step's traced reads), the shape of the project
// as it started, the programs it ran, and the final state of everything it wrote. A later build of the same command in
// the same place, on a tree of the same shape whose read files hold the same bytes, restores those outputs and prints
// make's output again without running make at all — a fresh clone or CI checkout of a built commit costs a walk, a
// hash of what the build reads and a copy of what it made.
//
// Files are compared by their bytes, as the step cache compares them; file times by their order only, since make
// decides by "newer than": the order of the project files make and the steps looked at must be the one the record saw.
import { createHash } from "node:crypto";
import { type Dirent, lstatSync, lutimesSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync } from "node:fs";
import { makeDirSync, writeFileAtomic } from "../core/fs.js";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import type { BlobStore } from "../cas/index.js";
import { errorMessage, type Logger } from "../core/index.js";
import { mapLimit } from "../core/concurrency.js";
import type { ProgramDigests } from "../cache/program-digests.js";
import type { StatCache, TreeEntry } from "../merkle/index.js";
import type { Touched } from "../steps/host-runner.js";
import type { ActionKind } from "../scheduler/index.js";
import { parsePreloadTrace } from "../steps/preload-trace.js";
import type { DriveEvents } from "./events.js";

/** Bump when what a record holds or how it is checked changes: older records are then not read. */
const RECORD_VERSION = 3;
/** Records kept per command and place (the newest first): a tree built in two configurations finds both. */
const KEEP = 3;
/** A project larger than this is not walked (nor remembered): the walk would cost more than it can save. */
const MAX_ENTRIES = 200_000;

/** Variables that differ between two shells of one user without changing what make does. */
const VOLATILE_ENV =
  /^(ORION_.*|PWD|OLDPWD|SHLVL|_|TERM|TERM_.*|COLORTERM|COLUMNS|LINES|SSH_.*|DISPLAY|XAUTHORITY|DBUS_SESSION_BUS_ADDRESS|XDG_SESSION_.*|XDG_VTNR|XDG_SEAT|INVOCATION_ID|JOURNAL_STREAM|GPG_TTY|WINDOWID|TMUX|TMUX_PANE|STY|WINDOW|LS_COLORS|PS[0-4]|HISTFILE|MAIL)$/;

/**
 * The state of one path: a file's content, a link's target, a directory, or nothing there — or, for a file outside
 * the project (a compiler, a system header), its stat stamp: such files are not replaced by a fresh checkout, and
 * hashing every program the build ran (cc1 alone is 33 MB) would cost more than the restore saves.
 */
type PathState = { t: "f"; h: string; s: number; x: boolean } | { t: "s"; st: string } | { t: "l"; to: string } | { t: "d" } | { t: "a" };

interface BuildRecord {
  v: number;
  /** Digest of the project's shape when the build started: every path under the root and its type. */
  shape: string;
  /** Paths the build read (or looked for) that it did not write, and their state then (= at its end). */
  reads: [string, PathState][];
  /** Directories outside the project whose listing make or its lines read, and the listing's digest. */
  listings: [string, string][];
  /** Programs the tool calls ran, and their digests (a compiler's is its toolchain's). */
  programs: [string, string][];
  /**
   * Files in the project that make (or a step) looked at and found, with their mtimes (ns) then: make decides by
   * their order, so a tree where one is now newer than another it was older than (`touch server.h`) is built by make.
   */
  order: [string, string][];
  /**
   * When make said every comparison of file times it made (MakeComparisons complete): [prerequisite, target, newer
   * then] for each pair of files the build found, and `order` is empty. A fresh tree must compare alike (a
   * configure's or cmake's files written in another order, a git checkout's times, do not matter where make never
   * compares them); what steps decide by file times themselves is not held to it (see the README).
   */
  pairs?: [string, string, boolean][];
  /** What the build left, in the order of its mtimes: created directories, files, links. */
  outputs: [string, PathState][];
  /** make's output (its stdout and stderr as they came), base64. */
  output: string;
  /** The build's actions and host steps, for the events of a restore. */
  actions: [ActionKind, string][];
  steps: [string, string][];
}

export interface ReplayPlace {
  /** The project root: the shape walked, outputs restored under it. */
  root: string;
  /** The directory make runs in. */
  dir: string;
  makeArgs: readonly string[];
  /** The environment make gets. */
  env: NodeJS.ProcessEnv;
  /** make's -j: not part of the key (it does not change what is built). */
  cacheDir: string;
}

export interface ReplayStores {
  store: BlobStore;
  statCache: StatCache;
}

/** Where the records of one command in one place live: `<cache>/builds/<digest>.json`. */
function recordFile(p: ReplayPlace): string {
  const env = Object.entries(p.env)
    .filter(([k, v]) => v !== undefined && !VOLATILE_ENV.test(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = createHash("sha256").update(JSON.stringify([RECORD_VERSION, p.root, p.dir, p.makeArgs, env])).digest("hex");
  return join(p.cacheDir, "builds", `${key.slice(0, 40)}.json`);
}

function readRecords(file: string): BuildRecord[] {
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as { v?: number; records?: BuildRecord[] };
    return doc.v === RECORD_VERSION && Array.isArray(doc.records) ? doc.records.filter(wellFormed) : [];
  } catch {
    return [];
  }
}

/** A record whose outputs all lie inside the project: a damaged or planted one must not write elsewhere. */
function wellFormed(r: BuildRecord): boolean {
  return (
    typeof r.shape === "string" &&
    [r.reads, r.listings, r.programs, r.order, r.outputs, r.actions, r.steps].every(Array.isArray) &&
    typeof r.output === "string" &&
    r.order.every((e) => Array.isArray(e) && typeof e[0] === "string" && /^\d+$/.test(String(e[1]))) &&
    (r.pairs === undefined || (Array.isArray(r.pairs) && r.pairs.every((e) => Array.isArray(e) && typeof e[0] === "string" && typeof e[1] === "string" && typeof e[2] === "boolean"))) &&
    r.outputs.every(([rel]) => typeof rel === "string" && rel !== "" && !rel.startsWith("/") && !rel.split("/").includes(".."))
  );
}

/** A few of the files a build made, listed beside its record (holdsOutputs). */
function writeProbe(file: string, made: readonly string[]): void {
  writeFileAtomic(`${file}.probe`, [...new Set([...made.slice(0, 4), ...made.slice(-4)])].join("\n"));
}

/** Forgets the records of this command here (a restore of one failed: it is not tried again). */
export function forgetBuild(p: ReplayPlace): void {
  rmSync(recordFile(p), { force: true });
  rmSync(`${recordFile(p)}.probe`, { force: true });
}

/**
 * The tree holds outputs of a remembered build of this command (a few of the newest record's files, kept beside it
 * in a small file): an edit, a touch or a no-op in a built tree. Nothing can be restored whole there, and such a build
 * changes what it finds, so it is not remembered either: no walk, no trace — the incremental loop pays nothing.
 */
export function holdsOutputs(p: ReplayPlace): boolean {
  let probe: string;
  try {
    probe = readFileSync(`${recordFile(p)}.probe`, "utf8");
  } catch {
    return false;
  }
  return probe.split("\n").some((rel) => {
    if (!rel || rel.startsWith("/") || rel.split("/").includes("..")) return false;
    try {
      lstatSync(resolve(p.root, rel));
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The project's shape: every path under `root` with its type ("f", "d", "o", or "l:" and a link's text); undefined past
 * MAX_ENTRIES. `.git` folders are left out: a fresh clone's differ in packs and index, and whatever the build reads of
 * them (a release header from `git rev-parse`) is an input by its bytes anyway.
 */
export type Shape = Map<string, string>;

export function walkShape(root: string, skip: (abs: string) => boolean, mtimes?: Map<string, bigint>): Shape | undefined {
  const out: Shape = new Map();
  const walk = (dir: string, rel: string): boolean => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return true;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.name === ".git" || skip(abs)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const t = e.isDirectory() ? "d" : e.isFile() ? "f" : e.isSymbolicLink() ? `l:${readlinkSync(abs)}` : "o";
      out.set(r, t);
      if (mtimes && t === "f") mtimes.set(abs, mtimeOf(abs));
      if (out.size > MAX_ENTRIES) return false;
      if (t === "d" && !walk(abs, r)) return false;
    }
    return true;
  };
  return walk(root, "") ? out : undefined;
}

function shapeDigest(shape: Map<string, string>): string {
  const h = createHash("sha256");
  for (const [rel, t] of [...shape].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${t}\0${rel}\n`);
  return h.digest("hex");
}

/** A stat stamp: what changes with any change to the file (ctime included), on this machine. */
function stampOf(abs: string, follow: boolean): string {
  try {
    const st = follow ? statSync(abs, { bigint: true }) : lstatSync(abs, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${st.mode}`;
  } catch {
    return "absent";
  }
}

/**
 * A path's state. Inside the project (`stamp` false) a link is followed to what it names, since what is read through
 * it is that file's bytes (the link's own text is in the shape). Outside it, the stamp of the name and of what it
 * names (a library's `.so` link keeps its text across an upgrade of what it points to).
 */
async function stateOf(abs: string, statCache: StatCache, stamp: boolean): Promise<PathState> {
  let st;
  try {
    st = lstatSync(abs, { bigint: true });
  } catch {
    return { t: "a" };
  }
  if (stamp) {
    if (st.isDirectory()) return { t: "d" };
    return { t: "s", st: st.isSymbolicLink() ? `${stampOf(abs, false)}>${readlinkSync(abs)}>${stampOf(abs, true)}` : stampOf(abs, false) };
  }
  if (st.isSymbolicLink()) {
    try {
      st = statSync(abs, { bigint: true });
    } catch {
      return { t: "a" };
    }
  }
  if (!st.isFile()) return { t: "d" };
  const x = (st.mode & 0o100n) !== 0n;
  const cmake = cmakeMakefile2Digest(abs);
  if (cmake) return { t: "f", h: cmake, s: Number(st.size), x };
  const d = await statCache.digestOf(abs, st);
  return { t: "f", h: d.hash, s: Number(d.sizeBytes), x };
}

const CMAKE_GENERATED = "# CMAKE generated file: DO NOT EDIT!";
/** `target: prerequisites` and nothing else (no recipe, no assignment). */
const PREREQUISITES_ONLY = /^([^\s#:=][^:=;]*):\s+[^:=;]*$/;

/**
 * CMake's top-level sub-make driver (CMakeFiles/Makefile2) lists each target's prerequisites one per line, in an order
 * that changes from one `cmake` run to the next (a hash set's). Its recipes name their targets, never `$^` or `$<`, so
 * the order of one target's prerequisite lines changes nothing make builds: it is digested with each run of lines
 * for one target sorted ("m:" before the digest keeps it apart from a content digest). Undefined for any other file.
 */
function cmakeMakefile2Digest(abs: string): string | undefined {
  if (basename(abs) !== "Makefile2" || basename(dirname(abs)) !== "CMakeFiles") return undefined;
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch {
    return undefined;
  }
  if (!text.startsWith(CMAKE_GENERATED)) return undefined;
  const lines = text.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const target = PREREQUISITES_ONLY.exec(lines[i]!)?.[1];
    let j = i + 1;
    if (target !== undefined) while (j < lines.length && PREREQUISITES_ONLY.exec(lines[j]!)?.[1] === target) j++;
    out.push(...lines.slice(i, j).sort());
    i = j;
  }
  return `m:${createHash("sha256").update(out.join("\n")).digest("hex")}`;
}

function listingDigest(abs: string): string {
  try {
    return createHash("sha256").update(readdirSync(abs).sort().join("\0")).digest("hex");
  } catch {
    return "absent";
  }
}

const sameState = (a: PathState, b: PathState): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Paths no build's record may depend on or leave: kernel views, and Orion's own scratch and caches. */
function ignoredPrefixes(extra: readonly string[]): (abs: string) => boolean {
  const prefixes = ["/proc/", "/dev/", "/sys/", "/run/", ...extra.map((p) => p.replace(/\/+$/, "") + "/")];
  return (abs) => prefixes.some((p) => abs.startsWith(p) || abs === p.slice(0, -1));
}

/** Restores the last build of this command here, when every file it read is as it was: true when it did. */
export async function replayBuild(
  p: ReplayPlace,
  o: { stores(): ReplayStores; programs: ProgramDigests; events: DriveEvents; diagnostics(chunk: Uint8Array): void; logger: Logger; ignore: readonly string[] },
): Promise<{ restored: boolean; shape?: Shape; mtimes?: Map<string, bigint> }> {
  const records = readRecords(recordFile(p));
  if (records.length === 0) return { restored: false };
  const log = o.logger.child({ module: "replay" });
  const t0 = performance.now();
  const ignored = ignoredPrefixes(o.ignore);
  const mtimes = new Map<string, bigint>();
  const shape = walkShape(p.root, ignored, mtimes);
  if (!shape) return { restored: false };
  const digest = shapeDigest(shape);
  const { store, statCache } = o.stores();
  let chosen: BuildRecord | undefined;
  const why: string[] = [];
  for (const r of records) {
    const differs = r.shape !== digest ? "the project's files and folders are not the same ones" : await differsFrom(r, statCache, o.programs);
    if (differs) {
      why.push(differs);
      continue;
    }
    const blobs = r.outputs.flatMap(([, s]) => (s.t === "f" ? [{ hash: s.h, sizeBytes: s.s }] : []));
    if ((await store.findMissing(blobs)).length > 0) {
      why.push("an output is no longer stored");
      continue;
    }
    chosen = r;
    break;
  }
  if (!chosen) {
    log.debug({ why, ms: Math.round(performance.now() - t0) }, "no earlier build of this tree matches it; make runs");
    return { restored: false, shape, mtimes };
  }
  await restoreOutputs(chosen.outputs, p.root, store, statCache);
  // The probe names this record's files now (an older record may have been the one restored).
  writeProbe(recordFile(p), chosen.outputs.filter(([rel, s]) => s.t === "f" && !shape.has(rel)).map(([rel]) => rel));
  o.diagnostics(Buffer.from(chosen.output, "base64"));
  const { events } = o;
  for (const [kind, label] of chosen.actions) events.actionEnded(events.actionStarted(kind, label), kind, label, { state: "cached", ms: 0 });
  for (const [cmd, cwd] of chosen.steps) {
    const id = events.stepId();
    events.hostStep(id, cmd, cwd, "started");
    events.hostStep(id, cmd, cwd, "finished", { ms: 0, cached: true });
  }
  log.info({ outputs: chosen.outputs.length, reads: chosen.reads.length, ms: Math.round(performance.now() - t0) }, "restored the whole build: every file it read is as the last build of this tree found it");
  return { restored: true };
}

/** Files read or copied at once: the work is mostly waiting on the disk. */
const IO_PARALLEL = 16;

/**
 * Puts the outputs back: directories and removals first, then files and links several at once, their mtimes then set
 * apart in the order the build left them, so the next make compares them as it would have.
 */
async function restoreOutputs(outputs: readonly [string, PathState][], root: string, store: BlobStore, statCache: StatCache): Promise<void> {
  const written: [string, PathState][] = [];
  for (const [rel, s] of outputs) {
    const abs = resolve(root, rel);
    if (s.t === "d") mkdirSync(abs, { recursive: true });
    else if (s.t === "a") rmSync(abs, { force: true });
    else {
      mkdirSync(dirname(abs), { recursive: true });
      written.push([abs, s]);
    }
  }
  await mapLimit(written, IO_PARALLEL, async ([abs, s]) => {
    if (s.t === "l") {
      rmSync(abs, { force: true });
      symlinkSync(s.to, abs);
    } else if (s.t === "f" && !(await store.copyOut({ hash: s.h, sizeBytes: s.s }, abs, s.x))) {
      throw new Error(`a stored output of the last build vanished: ${relative(root, abs)}`);
    }
  });
  // Ending at the kernel's file clock now (the ctime a copy just got), never ahead of it: an edit made right after
  // must still be newer than every output. 10 µs apart (utimes takes seconds as a double).
  const now = written.reduce((m, [abs]) => {
    const c = lstatSync(abs, { bigint: true }).ctimeNs;
    return c > m ? c : m;
  }, 0n);
  const step = 10_000n;
  const base = now - BigInt(Math.max(0, written.length - 1)) * step;
  written.forEach(([abs, s], i) => {
    const t = Number(base + BigInt(i) * step) / 1e9;
    if (s.t === "l") lutimesSync(abs, t, t);
    else utimesSync(abs, t, t);
    if (s.t === "f") statCache.remember(abs, lstatSync(abs, { bigint: true }), { hash: s.h, sizeBytes: s.s });
  });
}

/**
 * Two files whose mtimes do not stand now as they stood for the record — one newer than the other where it was older
 * or as old, or as old where it was older — or undefined. make decides by "newer than", so the whole order counts,
 * ties included: a tarball's extract keeps its times and matches; a git checkout matches when its writes fall into the
 * same clock ticks.
 */
function reorderedPair(order: readonly [string, string][]): string | undefined {
  const files = order.map(([abs, then]) => ({ abs, then: BigInt(then), now: mtimeOf(abs) }));
  files.sort((a, b) => (a.then < b.then ? -1 : a.then > b.then ? 1 : 0));
  let previous: { abs: string; now: bigint } | undefined;
  for (let i = 0; i < files.length; ) {
    let j = i;
    while (j < files.length && files[j]!.then === files[i]!.then) j++;
    const group = files.slice(i, j);
    const tie = group.find((f) => f.now !== group[0]!.now);
    if (tie) return `${group[0]!.abs} and ${tie.abs} no longer have the same mtime`;
    if (previous && previous.now >= group[0]!.now) return `${previous.abs} is no longer older than ${group[0]!.abs}`;
    previous = group[0]!;
    i = j;
  }
  return undefined;
}

/** A pair make compared whose outcome differs now ("newer than", as make decides it), or undefined. */
function comparedOtherwise(pairs: readonly [string, string, boolean][]): string | undefined {
  const times = new Map<string, bigint>();
  const time = (abs: string): bigint => {
    let t = times.get(abs);
    if (t === undefined) times.set(abs, (t = mtimeOf(abs)));
    return t;
  };
  for (const [prerequisite, target, newer] of pairs) {
    if (time(prerequisite) > time(target) !== newer) return `${prerequisite} is ${newer ? "no longer" : "now"} newer than ${target}`;
  }
  return undefined;
}

function mtimeOf(abs: string): bigint {
  try {
    return statSync(abs, { bigint: true }).mtimeNs;
  } catch {
    return -1n;
  }
}

/** Why the tree is not as the record found it (a difference), or undefined when it is. */
async function differsFrom(r: BuildRecord, statCache: StatCache, programs: ProgramDigests): Promise<string | undefined> {
  const reversed = r.pairs ? comparedOtherwise(r.pairs) : reorderedPair(r.order);
  if (reversed) return reversed;
  const reads = await mapLimit(r.reads, IO_PARALLEL, async ([abs, want]) => (sameState(await stateOf(abs, statCache, want.t === "s"), want) ? undefined : abs));
  const differing = reads.find((abs) => abs !== undefined);
  if (differing) return `${differing} differs`;
  for (const [abs, want] of r.listings) if (listingDigest(abs) !== want) return `the listing of ${abs} differs`;
  for (const [abs, want] of r.programs) {
    let now: string | undefined;
    try {
      now = await programs.digest(abs);
    } catch {
      now = undefined;
    }
    if (now !== want) return `the program ${abs} differs`;
  }
  return undefined;
}

/**
 * What one make-driven build did, gathered as it runs; `finish` stores it when the build can be restored whole next
 * time. The first reason it cannot (`refuse`) ends the gathering.
 */
export class BuildRecorder {
  private refused: string | undefined;
  private readonly shape: Shape | undefined;
  /** The mtimes of the project's files when the build started (a file it rewrites is ordered by the time it had). */
  private readonly startMtimes: Map<string, bigint>;
  private readonly reads = new Set<string>();
  private readonly writes = new Set<string>();
  /** What tool calls wrote: their start content unknown, so none may have been there before the build. */
  private readonly toolWrites = new Set<string>();
  /** What files the build changed held before it, as the traces of make and of its steps said. */
  private readonly before = new Map<string, TreeEntry>();
  /** Files two traces disagree about: which saw them first is not known (refused only if the build found them). */
  private readonly unsure = new Set<string>();
  /** Directories outside the project a step listed, with make's own listings checked by their names. */
  private readonly stepListings = new Set<string>();
  /** What make and the steps looked at (whose times make decides by, or a step such as cmake_depends compares). */
  private readonly looked = new Set<string>();
  private readonly programs = new Set<string>();
  private readonly output: Buffer[] = [];
  private readonly actions: [ActionKind, string][] = [];
  private readonly steps: [string, string][] = [];
  private readonly ignored: (abs: string) => boolean;
  private traceBytes = 0;

  constructor(
    private readonly p: ReplayPlace,
    /** make's trace file (the preload tracer's log of make and every process it started in its shell). */
    readonly traceFile: string,
    ignore: readonly string[],
    /** The shape a look-up just walked (the tree make starts on) and its files' mtimes, or undefined to walk it here. */
    walked?: { shape: Shape; mtimes: Map<string, bigint> },
  ) {
    this.ignored = ignoredPrefixes([...ignore, traceFile]);
    this.startMtimes = walked?.mtimes ?? new Map();
    this.shape = walked?.shape ?? walkShape(p.root, this.ignored, this.startMtimes);
    if (!this.shape) this.refuse("the project is too large to walk");
  }

  refuse(why: string): void {
    this.refused ??= why;
  }

  get refusedWhy(): string | undefined {
    return this.refused;
  }

  /** A tool call that was keyed (its inputs known); `program` its absolute path. */
  tool(kind: ActionKind, label: string, t: { reads: readonly string[]; writes: readonly string[]; program?: string } | undefined): void {
    this.actions.push([kind, label]);
    if (!t) return this.refuse(`${label} ran without a key (its inputs unknown)`);
    for (const r of t.reads) this.reads.add(r);
    for (const w of t.writes) this.writes.add(w), this.toolWrites.add(w);
    if (t.program) this.programs.add(t.program);
  }

  step(cmd: string, cwd: string, touched: Touched | undefined): void {
    this.steps.push([cmd, cwd]);
    if (!touched) return this.refuse(`a step ran untraced: ${cmd.slice(0, 80)}`);
    for (const r of touched.reads) this.reads.add(r), this.looked.add(r);
    for (const w of touched.writes) this.writes.add(w);
    for (const l of touched.lists ?? []) this.stepListings.add(l);
    this.learnBefore(touched.before);
  }

  /** What a trace says changed files held before (`touch release.c`); two parts saying different things cannot both be first. */
  private learnBefore(found: ReadonlyMap<string, TreeEntry> | undefined): void {
    for (const [abs, e] of found ?? []) {
      const had = this.before.get(abs);
      if (!had) this.before.set(abs, e);
      else if (had.digest.hash !== e.digest.hash || had.executable !== e.executable) this.unsure.add(abs);
    }
  }

  out(chunk: Uint8Array): void {
    if (!this.refused) this.output.push(Buffer.from(chunk));
  }

  /** Stores the record (best effort): the build succeeded, and started from a tree holding none of its outputs. */
  async finish(o: { stores(): ReplayStores; programs: ProgramDigests; logger: Logger }): Promise<void> {
    const log = o.logger.child({ module: "replay" });
    const t0 = performance.now();
    try {
      const record = await this.record(o.stores(), o.programs);
      if (!record) {
        log.debug({ why: this.refused }, "this build is not remembered whole");
        return;
      }
      const file = recordFile(this.p);
      const records = [record, ...readRecords(file).filter((r) => r.shape !== record.shape)].slice(0, KEEP);
      makeDirSync(dirname(file));
      writeFileAtomic(file, JSON.stringify({ v: RECORD_VERSION, records }));
      // Files the build made (not ones it found and changed, which a fresh tree holds too).
      writeProbe(file, record.outputs.filter(([rel, s]) => s.t === "f" && !this.shape?.has(rel)).map(([rel]) => rel));
      log.debug({ reads: record.reads.length, outputs: record.outputs.length, traceBytes: this.traceBytes, ms: Math.round(performance.now() - t0) }, "remembered the whole build");
    } catch (err) {
      log.warn({ err: errorMessage(err) }, "could not remember the whole build");
    }
  }

  private async record({ store, statCache }: ReplayStores, programs: ProgramDigests): Promise<BuildRecord | undefined> {
    if (this.refused) return undefined;
    const { root } = this.p;
    const shape = this.shape!;
    const inRoot = (abs: string): string | undefined => {
      const rel = relative(root, abs);
      return rel === "" ? "" : rel.startsWith("..") || rel.startsWith(sep) ? undefined : rel;
    };
    // What the tool calls and steps wrote is known without the trace: an edit's rebuild stops here, unread.
    for (const abs of this.toolWrites) {
      const rel = inRoot(abs);
      if (rel === undefined || this.ignored(abs)) continue;
      const before = shape.get(rel);
      if (before !== undefined && before !== "d") return this.refuse(`it changed ${rel}, which was there before it`), undefined;
    }
    const text = readFileSync(this.traceFile, "utf8");
    this.traceBytes = text.length;
    const trace = parsePreloadTrace(text);
    if (trace.untraceable) return this.refuse(`make's trace is incomplete: ${trace.untraceable}`), undefined;
    this.learnBefore(trace.startContent);
    const make = trace.make?.complete ? trace.make : undefined;
    const listings = new Set<string>(this.stepListings);
    for (const a of trace.accesses) {
      if (a.op === "write" || a.op === "remove" || a.op === "make") this.writes.add(a.path);
      else if (a.op === "list") listings.add(a.path);
      else this.reads.add(a.path), this.looked.add(a.path);
    }
    // What the build found and changed (automake's `mv -f x.Tpo x.Po` over configure's dummy) is an input as it was
    // then — the trace says what it held — and an output as it is now; without that record the build cannot be told.
    const outputs: [string, PathState, bigint][] = [];
    const reads: [string, PathState][] = [];
    for (const abs of this.writes) {
      if (this.ignored(abs)) continue;
      const rel = inRoot(abs);
      let st;
      try {
        st = lstatSync(abs, { bigint: true });
      } catch {
        st = undefined;
      }
      if (rel === undefined) {
        // Outside the project only what the build made and cleaned up after itself (temporary files).
        if (st) return this.refuse(`it left a file outside the project: ${abs}`), undefined;
        if (this.before.has(abs)) return this.refuse(`it removed a file outside the project: ${abs}`), undefined;
        continue;
      }
      // Written through a link to a folder: a restore would not put it where the build did.
      for (let at = rel.lastIndexOf("/"); at > 0; at = rel.lastIndexOf("/", at - 1)) {
        if (shape.get(rel.slice(0, at))?.startsWith("l:")) return this.refuse(`it wrote through a linked folder: ${rel}`), undefined;
      }
      const before = shape.get(rel);
      if (before !== undefined && !(before === "d" && st?.isDirectory())) {
        const found = this.unsure.has(abs) ? undefined : this.before.get(abs);
        if (before !== "f" || !found) return this.refuse(`it changed ${rel}, which was there before it`), undefined;
        reads.push([abs, { t: "f", h: found.digest.hash, s: Number(found.digest.sizeBytes), x: found.executable }]);
      }
      if (before === "d") continue;
      if (!st) {
        // Found and removed: a restore removes it too.
        if (before !== undefined) outputs.push([rel, { t: "a" }, 0n]);
        continue;
      }
      if (st.isDirectory()) outputs.push([rel, { t: "d" }, 0n]);
      else if (st.isSymbolicLink()) outputs.push([rel, { t: "l", to: readlinkSync(abs) }, st.mtimeNs]);
      else if (st.isFile()) {
        const d = await statCache.digestOf(abs, st);
        // Most are stored already, as an action's outputs.
        if (!(await store.has(d))) await store.putFile(abs, d);
        outputs.push([rel, { t: "f", h: d.hash, s: Number(d.sizeBytes), x: (st.mode & 0o100n) !== 0n }, st.mtimeNs]);
      } else return this.refuse(`it made a special file: ${rel}`), undefined;
    }
    // A no-op (or one that only printed) has nothing to restore; its record would only push out a useful one.
    if (outputs.length === 0) return this.refuse("it made nothing"), undefined;
    // Directories first (parents before children), then in the order make last wrote them: its next run compares them.
    const rank = (s: PathState) => (s.t === "d" ? 0 : s.t === "a" ? 1 : 2);
    outputs.sort((a, b) => rank(a[1]) - rank(b[1]) || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : a[0] < b[0] ? -1 : 1));
    for (const abs of this.reads) {
      if (this.ignored(abs) || this.writes.has(abs)) continue;
      const rel = inRoot(abs);
      const s = await stateOf(abs, statCache, rel === undefined);
      // Inside the project the shape already says what is there and what is not; a file's bytes are what matter.
      if (rel !== undefined && s.t !== "f") continue;
      // Outside it, a directory only by its type: /tmp's listing changes with every build.
      reads.push([abs, s]);
    }
    const listed: [string, string][] = [];
    for (const abs of listings) if (!this.ignored(abs) && inRoot(abs) === undefined && !this.writes.has(abs)) listed.push([abs, listingDigest(abs)]);
    // A file's time when the build started (one it rewrote had the time the walk saw); undefined for one it made.
    const startTime = (abs: string): bigint | undefined => {
      const rel = inRoot(abs);
      if (rel === undefined) return this.writes.has(abs) ? undefined : mtimeOf(abs);
      const t = shape.get(rel);
      if (t === undefined || t === "d") return undefined;
      const m = this.startMtimes.get(abs) ?? (this.writes.has(abs) ? undefined : mtimeOf(abs));
      return m !== undefined && m >= 0n ? m : undefined;
    };
    const order: [string, string][] = [];
    let pairs: [string, string, boolean][] | undefined;
    // A name make compared that is neither a file the build started with nor one it made (a VPATH target printed by
    // its unsearched name, an archive member), or a missing prerequisite of a target that was there (make may compare
    // what that prerequisite is made from, unsaid): make's word is not the whole story, and the full order is kept.
    const startedWith = (abs: string) => startTime(abs) !== undefined;
    const placed = (abs: string) => startedWith(abs) || this.writes.has(abs);
    const whole = make && make.compared.every(([p, t]) => placed(p) && placed(t)) && !(make.missing ?? []).some(([, t]) => startedWith(t));
    if (make && whole) {
      // Judged by the times the build started with, not as make saw them mid-build; a pair with a file the build
      // made is decided by the build itself.
      const seen = new Map<string, [string, string, boolean]>();
      for (const [prerequisite, target] of make.compared) {
        const p = startTime(prerequisite);
        const t = startTime(target);
        if (p !== undefined && t !== undefined) seen.set(`${prerequisite}\0${target}`, [prerequisite, target, p > t]);
      }
      pairs = [...seen.values()];
    } else {
      for (const abs of this.looked) {
        const m = startTime(abs);
        if (m !== undefined && inRoot(abs) !== undefined) order.push([abs, String(m)]);
      }
    }
    const progs: [string, string][] = [];
    for (const abs of this.programs) progs.push([abs, await programs.digest(abs)]);
    return {
      v: RECORD_VERSION,
      shape: shapeDigest(shape),
      reads,
      listings: listed,
      programs: progs,
      order,
      ...(pairs ? { pairs } : {}),
      outputs: outputs.map(([rel, s]) => [rel, s]),
      output: Buffer.concat(this.output).toString("base64"),
      actions: this.actions,
      steps: this.steps,
    };
  }
}
