// The whole-step cache: a host step (a configure run, a sub-make, a generator script) whose every
// file access was traced is stored as one entry — what it read, listed, and looked for in vain, each
// with a fingerprint, and what it left behind — and restored instead of run when every fingerprint
// still matches. Wrong hits are worse than misses: an access the trace could not place, a write that
// outlives the step outside the project, or a failed step is never stored.
//
// Fingerprints: a file inside the project by its content digest (from the build's hashed tree or, when make drives
// the build, the live file system through the stat cache — the same fingerprint either way, so a fresh extract with
// new timestamps still hits); a directory inside it by its entries' names; a path
// outside it (compilers, system headers, libraries) by lstat identity — device, inode, size, mtime,
// mode — which changes whenever a package upgrade replaces it; a missing path by its absence.
import { createHash } from "node:crypto";
import { lstatSync, statSync, readlinkSync, readdirSync, rmSync, rmdirSync, symlinkSync, chmodSync, type BigIntStats } from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";
import { type Digest, digestKey, parseDigestKey } from "../core/digest.js";
import { makeDirSync } from "../core/fs.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache, TreeEntry } from "../merkle/index.js";
import type { Access } from "./trace.js";
import { StateUnknownError, type TreeView } from "./tree-view.js";

/** Bump when what a step key or a fingerprint covers changes: old entries then never match. */
export const STEP_KEY_VERSION = 3;

/** Most entries kept under one step key; older ones are dropped first. */
const MAX_ENTRIES_PER_KEY = 8;

/** r = content read, L = listed, a = looked for and missing, p = checked for and present (a and p: existence and type only). */
type InputKind = "r" | "L" | "a" | "p";

/** How each kind of traced look at a path is fingerprinted: its content, its listing, its absence, its presence and type. */
const INPUT_KIND = { read: "r", list: "L", absent: "a", present: "p" } as const satisfies Record<string, InputKind>;
type Input = [kind: InputKind, path: string, fingerprint: string];

export type StepOutput =
  | { p: string; t: "f"; d: string; m: number }
  | { p: string; t: "d" }
  | { p: string; t: "l"; target: string }
  | { p: string; t: "-" };

export interface StepEntry {
  inputs: Input[];
  outputs: StepOutput[];
  /** The step's output replayed on a hit: stdout and stderr interleaved, or its stdout alone when `err` is set. */
  log?: string;
  /** Its stderr, when it was kept apart (a line make runs, whose two streams go back to the shell that asked). */
  err?: string;
  ms: number;
}

/** Environment variables that say nothing about what a step produces (terminal, session, make's plumbing, Orion's own). */
const VOLATILE_ENV = /^(PWD|OLDPWD|SHLVL|_|TERM|TERM_.*|COLORTERM|COLUMNS|LINES|NO_COLOR|FORCE_COLOR|LS_COLORS|SSH_.*|DISPLAY|WINDOWID|XDG_SESSION_.*|XDG_RUNTIME_DIR|DBUS_SESSION_BUS_ADDRESS|TMUX.*|STY|INVOCATION_ID|JOURNAL_STREAM|ORION_.*|VITEST.*)$/;

/** Paths whose content is not a file's (devices, kernel views): never inputs or outputs. */
const IGNORED = ["/dev/", "/proc/", "/sys/", "/run/"];

/** The step key: the command line, where it runs, and the environment it sees. */
export function stepKey(root: string, cwd: string, argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const vars = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && !VOLATILE_ENV.test(e[0]))
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return createHash("sha256").update(JSON.stringify([STEP_KEY_VERSION, root, cwd, argv, vars])).digest("hex");
}

/**
 * Fingerprints paths against one view of the tree; paths outside it memoized for the life of the object (one step:
 * steps running at once each have their own).
 */
export class Fingerprinter {
  private readonly outside = new Map<string, string>();

  constructor(private tree: TreeView) {}

  /** Later fingerprints of paths inside the project through `tree` (the tree as a step started, after it ran). */
  setTree(tree: TreeView): void {
    this.tree = tree;
  }

  /** What the file at `abs` held when the step started (its trace's word for a file it changed in place). */
  learnStart(abs: string, entry: TreeEntry): void {
    const rel = this.rel(abs);
    if (rel !== undefined) this.tree.learnStart?.(rel, entry);
  }

  /** Root-relative when `abs` lies in the project tree (not its .git), else undefined. */
  rel(abs: string): string | undefined {
    const root = this.tree.root;
    if (abs === root) return "";
    if (!abs.startsWith(root + "/")) return undefined;
    const rel = abs.slice(root.length + 1);
    return rel === ".git" || rel.startsWith(".git/") ? undefined : rel;
  }

  of(kind: InputKind, p: string): Promise<string> {
    return p.startsWith("/") ? Promise.resolve(this.outsideOf(kind, p)) : this.insideOf(kind, p);
  }

  private async insideOf(kind: InputKind, rel: string, depth = 0): Promise<string> {
    const type = this.tree.type(rel);
    // What was looked for (found or not) matters by its existence and type only.
    const existence = kind === "p" || kind === "a";
    if (type === "f") {
      if (existence) return "f";
      const f = await this.tree.file(rel);
      return f ? `f${f.digest.hash}${f.executable ? "x" : ""}` : "-";
    }
    if (type === "l") {
      if (existence) return "l";
      const link = this.tree.symlink(rel);
      if (link === undefined) return "-";
      // What is read is what the link points at: follow it (a link to a link, a few times at most).
      const to = path.resolve(path.join(this.tree.root, path.dirname(rel)), link);
      const toRel = this.rel(to);
      const target = depth > 8 ? "loop" : toRel === undefined ? this.outsideOf(kind, to) : await this.insideOf(kind, toRel, depth + 1);
      return `l${link}>${target}`;
    }
    if (type === "d") return kind === "L" ? `D${(this.tree.listing(rel) ?? []).join("/")}` : "d";
    if (existence) return "-";
    // Not in the tree: missing — unless reached through a symlinked directory, whose target the file system resolves.
    for (let dir = path.dirname(rel); dir !== "." && dir !== ""; dir = path.dirname(dir)) {
      if (this.tree.type(dir) === "l") return `>${this.outsideOf(kind, path.join(this.tree.root, rel))}`;
    }
    return "-";
  }

  private outsideOf(kind: InputKind, abs: string): string {
    const existence = kind === "p" || kind === "a";
    const memoKey = `${existence ? "p" : kind}${abs}`;
    const memo = this.outside.get(memoKey);
    if (memo !== undefined) return memo;
    let st: BigIntStats | undefined;
    try {
      // Followed: a program run through /bin/sh -> dash is dash.
      st = statSync(abs, { bigint: true });
    } catch {
      st = undefined;
    }
    // A directory that was only stat'ed or opened matters by existence: its entries are an input only when listed
    // (and /tmp's or $HOME's mtime moves all the time).
    const fp = !st ? "-" : existence || (kind === "r" && st.isDirectory()) ? (st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : "f") : `s${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.mode}`;
    this.outside.set(memoKey, fp);
    return fp;
  }
}

export class StepCache {
  private readonly db: Database.Database;
  private readonly q: {
    get: Database.Statement<[string], { id: number; entry: string }>;
    put: Database.Statement<[string, string, number]>;
    trim: Database.Statement<[string, string, number]>;
  };

  constructor(file: string) {
    this.db = openDatabase(file);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        entry TEXT NOT NULL,
        created INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS steps_key ON steps (key, id);
    `);
    this.q = {
      get: this.db.prepare("SELECT id, entry FROM steps WHERE key = ? ORDER BY id DESC"),
      put: this.db.prepare("INSERT INTO steps (key, entry, created) VALUES (?, ?, ?)"),
      trim: this.db.prepare("DELETE FROM steps WHERE key = ? AND id NOT IN (SELECT id FROM steps WHERE key = ? ORDER BY id DESC LIMIT ?)"),
    };
  }

  /**
   * The newest entry under `key` whose every input fingerprint matches now; else, for the log, the first
   * inputs of the newest entry that no longer match (none when the key was never stored).
   */
  async find(key: string, fp: Fingerprinter): Promise<{ entry: StepEntry } | { changed: string[] }> {
    let changed: string[] | undefined;
    for (const row of this.q.get.all(key)) {
      let entry: StepEntry;
      try {
        entry = JSON.parse(row.entry) as StepEntry;
      } catch {
        continue;
      }
      const differ: string[] = [];
      for (const [kind, p, want] of entry.inputs) {
        const now = await fp.of(kind, p);
        if (now !== want) differ.push(`${kind} ${p}: ${want} -> ${now}`);
        // The newest entry's first changes are enough for the log; an older one only needs to be ruled out.
        if (differ.length >= (changed ? 1 : 5)) break;
      }
      if (differ.length === 0) return { entry };
      changed ??= differ;
    }
    return { changed: changed ?? [] };
  }

  put(key: string, entry: StepEntry): void {
    this.q.put.run(key, JSON.stringify(entry), Date.now());
    this.q.trim.run(key, key, MAX_ENTRIES_PER_KEY);
  }

  clear(): void {
    this.db.exec("DELETE FROM steps");
  }

  count(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM steps").get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}

export type Recorded = { entry: StepEntry } | { uncacheable: string };

/**
 * Turns a successful step's accesses into an entry: inputs fingerprinted against the tree as it was
 * before the step (`before`), outputs as they are now (stored in `store`). `log` is the output to replay (its stdout
 * alone when `err`, its stderr, is given too).
 */
export async function recordStep(
  accesses: readonly Access[],
  before: Fingerprinter,
  deps: { store: BlobStore; statCache: StatCache; ignore?: (abs: string) => boolean },
  extra: { log?: Uint8Array; err?: Uint8Array; ms: number },
): Promise<Recorded> {
  const { inputs, touched, made } = sortAccesses(accesses, deps.ignore);
  addDirectoryContents(touched, before);
  const keyed: Input[] = [];
  for (const [abs, kind] of inputs) {
    const rel = before.rel(abs);
    const p = rel ?? abs;
    try {
      keyed.push([kind, p, await before.of(kind, p)]);
    } catch (err) {
      if (err instanceof StateUnknownError) return { uncacheable: err.message };
      throw err;
    }
  }
  const found = await describeOutputs(touched, made, before, deps.statCache);
  if ("uncacheable" in found) return found;
  // A step that copies a file (install, cp) leaves bytes the store often holds already: over a farm's gRPC store each
  // putFile would send them all again (Redis's three installs of redis-server, 12 MB each).
  const missing = new Set((await deps.store.findMissing(found.files.map((f) => f.digest))).map(digestKey));
  for (const f of found.files) if (missing.has(digestKey(f.digest))) await deps.store.putFile(f.abs, f.digest);
  const put = async (bytes?: Uint8Array) => (bytes?.length ? digestKey(await deps.store.put(bytes)) : undefined);
  const log = await put(extra.log);
  const err = await put(extra.err);
  keyed.sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  return { entry: { inputs: keyed, outputs: sortForRestore(found.outputs), log, ...(err ? { err } : {}), ms: Math.round(extra.ms) } };
}

/**
 * The step's accesses sorted into inputs (each path by its first look, unless the step wrote it first), the paths it
 * touched (wrote, made, removed), and those it made as directories or symlinks (anything else left as a symlink was
 * written through).
 */
function sortAccesses(accesses: readonly Access[], ignore?: (abs: string) => boolean): { inputs: Map<string, InputKind>; touched: Set<string>; made: Set<string> } {
  const owned = new Set<string>();
  const inputs = new Map<string, InputKind>();
  const touched = new Set<string>();
  const made = new Set<string>();
  const note = (p: string, kind: InputKind) => {
    if (!owned.has(p) && !inputs.has(p)) inputs.set(p, kind);
  };
  for (const a of accesses) {
    if (IGNORED.some((prefix) => a.path.startsWith(prefix)) || ignore?.(a.path)) continue;
    switch (a.op) {
      case "read":
      case "list":
      case "absent":
      case "present":
        note(a.path, INPUT_KIND[a.op]);
        break;
      case "write":
        // Appending or rewriting in place: what was there before is part of the result.
        if (!a.fresh) note(a.path, "r");
        owned.add(a.path);
        touched.add(a.path);
        break;
      case "make":
        made.add(a.path);
        owned.add(a.path);
        touched.add(a.path);
        break;
      case "remove":
        owned.add(a.path);
        touched.add(a.path);
        break;
    }
  }
  return { inputs, touched, made };
}

/** A directory the step left inside the project (made, or renamed into place) holds what it put there: all of it is output. */
function addDirectoryContents(touched: Set<string>, before: Fingerprinter): void {
  for (const abs of [...touched]) {
    let isDir = false;
    try {
      isDir = lstatSync(abs).isDirectory();
    } catch {
      isDir = false;
    }
    if (isDir && before.rel(abs) !== undefined && before.rel(abs) !== "") for (const inside of walkDir(abs)) touched.add(inside);
  }
}

/**
 * What each touched path is now, as an output; with the files to store. Uncacheable when the step leaves something
 * outside the project, changes the project directory itself, writes through a symlink, or leaves a special file.
 */
async function describeOutputs(
  touched: ReadonlySet<string>,
  made: ReadonlySet<string>,
  before: Fingerprinter,
  statCache: StatCache,
): Promise<{ outputs: StepOutput[]; files: { abs: string; digest: Digest }[] } | { uncacheable: string }> {
  const outputs: StepOutput[] = [];
  /** Files to store: only those the store lacks are copied into it, after every output has been looked at. */
  const files: { abs: string; digest: Digest }[] = [];
  for (const abs of [...touched].sort()) {
    const rel = before.rel(abs);
    let st: BigIntStats | undefined;
    try {
      st = lstatSync(abs, { bigint: true });
    } catch {
      st = undefined;
    }
    if (rel === undefined) {
      // Scratch files outside the project are fine when the step removed them again.
      if (st) return { uncacheable: `it leaves ${abs} behind, outside the project` };
      continue;
    }
    if (rel === "") return { uncacheable: "it changes the project directory itself" };
    if (!st) outputs.push({ p: rel, t: "-" });
    else if (st.isDirectory()) outputs.push({ p: rel, t: "d" });
    else if (st.isSymbolicLink()) {
      // Written through a link: the file it points at changed, which this entry would not restore.
      if (!made.has(abs)) return { uncacheable: `it writes through the symlink ${abs}` };
      outputs.push({ p: rel, t: "l", target: readlinkSync(abs) });
    }
    else if (st.isFile()) {
      const d = await statCache.digestOf(abs, st);
      files.push({ abs, digest: d });
      outputs.push({ p: rel, t: "f", d: digestKey(d), m: Number(st.mode & 0o7777n) });
    } else return { uncacheable: `it leaves ${abs}, neither a file, a directory nor a symlink` };
  }
  return { outputs, files };
}

/** Removals first, deepest first (a directory is emptied before it goes); then by depth: a directory exists before what goes in it. */
function sortForRestore(outputs: StepOutput[]): StepOutput[] {
  const depth = (p: string) => p.split("/").length;
  return outputs.sort((a, b) =>
    (a.t === "-") !== (b.t === "-") ? (a.t === "-" ? -1 : 1) : (a.t === "-" ? depth(b.p) - depth(a.p) : depth(a.p) - depth(b.p)) || (a.p < b.p ? -1 : 1),
  );
}

/** Every path under `dir` (not following symlinks). */
function walkDir(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const abs = path.join(dir, e.name);
    out.push(abs);
    if (e.isDirectory()) out.push(...walkDir(abs));
  }
  return out;
}

/**
 * Puts a cached step's outputs in place under `root`. "missing", touching nothing, when a blob it needs is gone from
 * the store (evicted, corrupt) or a directory it removed now holds something it did not: the caller runs the step.
 * Throws when the tree refused a change half-way (the caller must not trust its view of the tree then).
 */
export async function restoreStep(entry: StepEntry, root: string, store: BlobStore, statCache?: StatCache): Promise<"restored" | "missing"> {
  const blobs = entry.outputs.flatMap((o) => (o.t === "f" ? [parseDigestKey(o.d)] : []));
  if (entry.log) blobs.push(parseDigestKey(entry.log));
  if (entry.err) blobs.push(parseDigestKey(entry.err));
  // Hashed, not stamped: a rotten output found half-way through would leave the tree half restored.
  if ((await store.findMissing(blobs, { verify: true })).length > 0) return "missing";
  // A directory the step removed must hold nothing the step did not remove too: never delete what it did not.
  const removed = new Set(entry.outputs.filter((o) => o.t === "-").map((o) => o.p));
  for (const p of removed) {
    const abs = path.join(root, p);
    let names: string[] = [];
    try {
      if (lstatSync(abs).isDirectory()) names = readdirSync(abs);
    } catch {
      names = [];
    }
    if (names.some((n) => !removed.has(`${p}/${n}`))) return "missing";
  }
  for (const o of entry.outputs) {
    const abs = path.join(root, o.p);
    const existing = (() => {
      try {
        return lstatSync(abs);
      } catch {
        return undefined;
      }
    })();
    if (o.t === "-") {
      if (existing?.isDirectory()) rmdirSync(abs);
      else if (existing) rmSync(abs, { force: true });
      continue;
    }
    if (o.t === "d") {
      if (existing && !existing.isDirectory()) rmSync(abs, { force: true });
      makeDirSync(abs);
      continue;
    }
    if (existing?.isDirectory()) rmSync(abs, { recursive: true, force: true });
    makeDirSync(path.dirname(abs));
    if (o.t === "l") {
      if (existing && !existing.isDirectory()) rmSync(abs, { force: true });
      symlinkSync(o.target, abs);
      continue;
    }
    if (existing?.isSymbolicLink()) rmSync(abs, { force: true });
    const digest = parseDigestKey(o.d);
    // Already there with this content (a copy a previous build made): leave it, as make would find it up to date.
    if (existing?.isFile() && existing.size === digest.sizeBytes && statCache && (await statCache.digestOf(abs)).hash === digest.hash) {
      if ((existing.mode & 0o7777) !== o.m) chmodSync(abs, o.m);
      continue;
    }
    if (!(await store.copyOut(digest, abs, (o.m & 0o111) !== 0))) throw new Error(`blob ${o.d} for ${abs} vanished from the store during the restore`);
    chmodSync(abs, o.m);
    statCache?.remember(abs, lstatSync(abs, { bigint: true }), digest);
  }
  return "restored";
}
