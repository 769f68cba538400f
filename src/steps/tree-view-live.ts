// The project tree read from the file system when asked, for a build that never hashes the whole tree (make drives it
// and runs other lines meanwhile): a path's type by lstat, a file's content through the stat cache (a digest is reused
// while the file's stat is unchanged, so a warm look at a step's few hundred inputs costs stats, not reads), a
// directory by readdir. And the tree as a step found it when it started, told after it ran: its shape (names and
// types, one readdir per directory, no stat) walked just before it started, file contents read after it ran where the
// file has not changed since it started — else as this step's look before it (the cache look-up) saw them.
import { type BigIntStats, type Dirent, lstatSync, readdirSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import type { StatCache, TreeEntry } from "../merkle/index.js";
import { type EntryType, StateUnknownError, type TreeView } from "./tree-view.js";

/** The name the tree hasher (src/merkle hashTree) leaves out wherever it appears, directory or file (a submodule's). */
const SKIPPED_NAME = ".git";

const NS_PER_S = 1_000_000_000n;

/** The type the tree records a directory entry as; undefined for what it leaves out (sockets, FIFOs, devices). */
function typeOf(e: Dirent | BigIntStats): EntryType | undefined {
  return e.isFile() ? "f" : e.isSymbolicLink() ? "l" : e.isDirectory() ? "d" : undefined;
}

/** The names a listing shows, as the tree hasher would list them: sorted, `.git` and special files left out. */
function namesOf(entries: Dirent[]): string[] {
  return entries.filter((e) => e.name !== SKIPPED_NAME && typeOf(e) !== undefined).map((e) => e.name).sort();
}

function lstatOrUndefined(abs: string): BigIntStats | undefined {
  try {
    return lstatSync(abs, { bigint: true });
  } catch {
    return undefined;
  }
}

function entryOf(digestOf: Promise<TreeEntry["digest"]>, st: BigIntStats): Promise<TreeEntry> {
  // Owner-executable, as the tree hasher records it.
  return digestOf.then((digest) => ({ digest, executable: (st.mode & 0o100n) !== 0n }));
}

/**
 * The file system under `root`, asked on demand. Each file's content and each link's target it first answered stay
 * noted: the same view asked before a step ran then knows what the step may have changed since (StepStartView).
 * One per step; synchronous stats on purpose (a stat the inode cache serves takes microseconds, a promise's round
 * trip through the thread pool many times that).
 */
export class LiveTreeView implements TreeView {
  private readonly firstFiles = new Map<string, TreeEntry>();
  private readonly firstLinks = new Map<string, string>();

  constructor(
    readonly root: string,
    private readonly statCache: StatCache,
  ) {}

  type(rel: string): EntryType | undefined {
    const st = this.stat(rel);
    return st && typeOf(st);
  }

  async file(rel: string): Promise<TreeEntry | undefined> {
    const st = this.stat(rel);
    if (!st?.isFile()) return undefined;
    const entry = await entryOf(this.statCache.digestOf(this.abs(rel), st), st);
    if (!this.firstFiles.has(rel)) this.firstFiles.set(rel, entry);
    return entry;
  }

  symlink(rel: string): string | undefined {
    if (!this.stat(rel)?.isSymbolicLink()) return undefined;
    let target: string;
    try {
      target = readlinkSync(this.abs(rel));
    } catch {
      return undefined;
    }
    if (!this.firstLinks.has(rel)) this.firstLinks.set(rel, target);
    return target;
  }

  listing(rel: string): readonly string[] | undefined {
    if (this.type(rel) !== "d") return undefined;
    try {
      return namesOf(readdirSync(this.abs(rel), { withFileTypes: true }));
    } catch {
      return undefined;
    }
  }

  /** The file's content as this view first answered it, if it was asked. */
  firstFile(rel: string): TreeEntry | undefined {
    return this.firstFiles.get(rel);
  }

  /** The link's target as this view first answered it, if it was asked. */
  firstLink(rel: string): string | undefined {
    return this.firstLinks.get(rel);
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  /**
   * lstat of `rel` when it is part of the tree, as the tree hasher walks it: every directory above it a real directory
   * (not a symlink to one), no part of it named `.git`. The root itself may be a symlink to a directory (readdir follows it).
   */
  private stat(rel: string): BigIntStats | undefined {
    if (rel === "") {
      try {
        const st = statSync(this.root, { bigint: true });
        return st.isDirectory() ? st : undefined;
      } catch {
        return undefined;
      }
    }
    const parts = rel.split("/");
    if (parts.some((p) => p === SKIPPED_NAME || p === "" || p === "." || p === "..")) return undefined;
    let abs = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      abs += `/${parts[i]}`;
      if (!lstatOrUndefined(abs)?.isDirectory()) return undefined;
    }
    return lstatOrUndefined(`${abs}/${parts[parts.length - 1]}`);
  }
}

/** A tree's names and types (no contents), as they were when walked. */
export interface TreeShape {
  type(rel: string): EntryType | undefined;
  listing(rel: string): readonly string[] | undefined;
  /** The regular files: what an interrupted step may not remove. */
  readonly files: { has(rel: string): boolean };
}

/** Walks `root` as the tree hasher does (symlinks not followed, `.git` and special files left out), readdir only. */
export async function walkTreeShape(root: string): Promise<TreeShape> {
  const types = new Map<string, EntryType>([["", "d"]]);
  const listings = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(rel === "" ? root : `${root}/${rel}`, { withFileTypes: true });
    } catch {
      // Removed while walked (by a line running beside): no longer part of the tree.
      if (rel !== "") types.delete(rel);
      return;
    }
    const subdirs: Promise<void>[] = [];
    for (const e of entries) {
      const t = e.name === SKIPPED_NAME ? undefined : typeOf(e);
      if (!t) continue;
      const childRel = rel === "" ? e.name : `${rel}/${e.name}`;
      types.set(childRel, t);
      if (t === "d") subdirs.push(walk(childRel));
    }
    listings.set(rel, namesOf(entries));
    await Promise.all(subdirs);
  };
  await walk("");
  return {
    type: (rel) => types.get(rel),
    listing: (rel) => (types.get(rel) === "d" ? (listings.get(rel) ?? []) : undefined),
    files: { has: (rel) => types.get(rel) === "f" },
  };
}

/**
 * Changed at or after `t0` (the kernel's clock, in ns: the ctime of a file made at that moment): compared in whole
 * seconds where the file system stamps whole seconds, which would otherwise put a later change before `t0`.
 */
export function changedSince(st: BigIntStats, t0: bigint): boolean {
  return st.ctimeNs >= (st.ctimeNs % NS_PER_S === 0n ? t0 - (t0 % NS_PER_S) : t0);
}

/**
 * The start of a step on the kernel's ctime clock: a tick later than the last change made before it. The kernel
 * stamps ctime from a coarse clock (a few ms a tick), so a file another line wrote just before the step started can
 * carry the same stamp as `marker`, made now; waiting for the next tick (≤ a few ms, re-stamping the marker) puts
 * every earlier change strictly before the step's start, and every change the step makes at or after it.
 */
export async function nextCtimeTick(marker: string): Promise<bigint> {
  const first = lstatSync(marker, { bigint: true }).ctimeNs;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 1));
    writeFileSync(marker, "");
    const now = lstatSync(marker, { bigint: true }).ctimeNs;
    if (now > first) return now;
  }
  return first + 1n;
}

/**
 * The tree as a step found it when it started (`startNs`), asked after the step ran: its shape as walked just before
 * it started; a file's content or a link's target as it is now when it has not changed since, else as `before` (the
 * live view the cache look-up asked, before the step) first saw it. A path the step changed that neither tells is
 * unknown (StateUnknownError): a step that reads a file and then rewrites or removes it is stored only when the
 * look-up before it read that file (an input of an entry stored earlier under the same key).
 */
export class StepStartView implements TreeView {
  readonly root: string;
  /** Files the step changed in place, as its trace says they were when it started. */
  private readonly started = new Map<string, TreeEntry>();

  constructor(
    private readonly shape: TreeShape,
    private readonly before: LiveTreeView,
    private readonly startNs: bigint,
    private readonly statCache: StatCache,
  ) {
    this.root = before.root;
  }

  type(rel: string): EntryType | undefined {
    return this.shape.type(rel);
  }

  listing(rel: string): readonly string[] | undefined {
    return this.shape.listing(rel);
  }

  async file(rel: string): Promise<TreeEntry | undefined> {
    if (this.shape.type(rel) !== "f") return undefined;
    const abs = `${this.root}/${rel}`;
    const st = lstatOrUndefined(abs);
    if (st?.isFile() && !changedSince(st, this.startNs)) return entryOf(this.statCache.digestOf(abs, st), st);
    const seen = this.before.firstFile(rel) ?? this.started.get(rel);
    if (seen) return seen;
    throw new StateUnknownError(rel, "was read and then changed while the step ran");
  }

  learnStart(rel: string, entry: TreeEntry): void {
    if (this.shape.type(rel) === "f") this.started.set(rel, entry);
  }

  symlink(rel: string): string | undefined {
    if (this.shape.type(rel) !== "l") return undefined;
    const abs = `${this.root}/${rel}`;
    const st = lstatOrUndefined(abs);
    if (st?.isSymbolicLink() && !changedSince(st, this.startNs)) {
      try {
        return readlinkSync(abs);
      } catch {
        // Gone since the stat: asked of the look before.
      }
    }
    const seen = this.before.firstLink(rel);
    if (seen !== undefined) return seen;
    throw new StateUnknownError(rel, "was read and then changed while the step ran");
  }
}
