// A persistent (path, size, mtime, inode) → digest cache, so re-hashing an unchanged tree reads no file contents.
import { type BigIntStats, lstatSync } from "node:fs";
import { dirname } from "node:path";
import { FileClock, sameStat } from "../core/fs.js";
import * as fsp from "node:fs/promises";
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";
import { digestOfFile, isDiskFull, systemClock, type Clock, type Digest } from "../core/index.js";

export interface StatCacheOptions {
  /** Files modified this recently are hashed but not recorded (default 2000 ms); see `digestOf`. */
  racyWindowMs?: number;
  clock?: Clock;
}

interface Row {
  size: bigint;
  mtime_ns: bigint;
  ino: bigint;
  hash: string;
}

/** Rows waiting for the next flush are written in one transaction once this many pile up. */
const FLUSH_BATCH = 1000;

/** Past this, a file's mtime tick is over (file systems stamp with a clock tick of a few ms at most). */
const REMEMBERED_SETTLE_NS = 50_000_000n;

export class StatCache {
  /** Digests served from the cache without reading the file. */
  hits = 0;
  /** Digests computed by reading the file. */
  misses = 0;
  private readonly db: Database.Database;
  private readonly racyWindowNs: bigint;
  private readonly clock: Clock;
  /** Rows of files the caller wrote itself (remember), kept for flush once their mtime has settled. */
  private readonly remembered = new Map<string, Row>();
  /** Rows computed since the last flush. */
  private readonly pending = new Map<string, Row>();
  /**
   * Every row, read in one query on first use: 2-3x cheaper than one SELECT per file, and a whole tree is looked up
   * anyway. A row another process writes later is just not seen (a re-hash, never a wrong answer).
   */
  private rows: Map<string, Row> | undefined;
  private readonly selectAll: Database.Statement<[], Row & { path: string }>;
  private readonly upsert: Database.Statement<[string, bigint, bigint, bigint, string]>;
  /** The kernel's file clock, read beside the database (settled rows at close). */
  private readonly fileClock: FileClock;

  constructor(path: string, options: StatCacheOptions = {}) {
    this.fileClock = new FileClock(dirname(path));
    this.racyWindowNs = BigInt(options.racyWindowMs ?? 2000) * 1_000_000n;
    this.clock = options.clock ?? systemClock;
    this.db = openDatabase(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS stat_cache (
      path TEXT PRIMARY KEY,
      size INTEGER NOT NULL,
      mtime_ns INTEGER NOT NULL,
      ino INTEGER NOT NULL,
      hash TEXT NOT NULL
    )`);
    // Nanosecond mtimes and 64-bit inode numbers exceed 2^53, so they travel as bigint both ways.
    this.selectAll = this.db
      .prepare<[], Row & { path: string }>("SELECT path, size, mtime_ns, ino, hash FROM stat_cache")
      .safeIntegers(true);
    this.upsert = this.db.prepare(
      "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ino, hash) VALUES (?, ?, ?, ?, ?)",
    );
  }

  /** The recorded rows, read from SQLite on first use. */
  private loaded(): Map<string, Row> {
    this.rows ??= new Map(this.selectAll.all().map((r) => [r.path, r]));
    return this.rows;
  }

  /**
   * The digest recorded for a file still as `st` says (size, mtime, inode), counted as a hit; undefined when there is
   * none (`digestOf` then reads it). Synchronous: a walk over thousands of unchanged files awaits nothing for them.
   */
  known(absPath: string, st: BigIntStats): Digest | undefined {
    const row = this.loaded().get(absPath);
    if (!row || !rowMatches(row, st)) return undefined;
    this.hits++;
    return { hash: row.hash, sizeBytes: Number(row.size) };
  }

  /**
   * The digest of the file at `absPath`. `st` (from `fs.lstat`/`fs.stat` with `{ bigint: true }`) saves a stat when
   * the caller already has one. ctime is deliberately not compared: tools that copy trees with preserved times
   * (rsync, tar) would otherwise force a full re-hash, and size+mtime_ns+inode already catches ordinary edits.
   */
  async digestOf(absPath: string, st?: BigIntStats): Promise<Digest> {
    const before = st ?? (await fsp.stat(absPath, { bigint: true }));
    const known = this.known(absPath, before);
    if (known) return known;
    this.misses++;
    // Taken before the read: a write during it, within the file's clock tick, would leave its stat as it was.
    const readFromNs = BigInt(this.clock.now()) * 1_000_000n;
    const digest = await digestOfFile(absPath);
    // Like git's racy-clean check: a file written within the timestamp granularity of "now" could change again
    // without its stat changing, so its digest is not trusted for next time. Nor is one that changed while we read it.
    const after = await fsp.stat(absPath, { bigint: true });
    const stable = sameStat(after, before) && BigInt(digest.sizeBytes) === after.size;
    const fresh: Row = { size: after.size, mtime_ns: after.mtimeNs, ino: after.ino, hash: digest.hash };
    // The window is the file system's: a header touched just before a build is trusted ~50 ms later on ext4, not
    // re-read by each of the 59 compiles that include it (Redis's server.h, ~40 ms of hashing per build).
    if (stable && readFromNs - after.mtimeNs >= this.settleNs(fresh)) {
      this.loaded().set(absPath, fresh);
      this.pending.set(absPath, fresh);
      if (this.pending.size >= FLUSH_BATCH) this.flush();
    }
    return digest;
  }

  /**
   * Records the digest of a file the caller has just written itself with known content (an output copied out of the
   * store), so the next hash of the tree does not read it back. Kept for this process only while it is racy (above).
   */
  remember(absPath: string, st: BigIntStats, digest: Digest): void {
    if (BigInt(digest.sizeBytes) !== st.size) return;
    const row: Row = { size: st.size, mtime_ns: st.mtimeNs, ino: st.ino, hash: digest.hash };
    this.loaded().set(absPath, row);
    this.remembered.set(absPath, row);
  }

  /**
   * Writes pending rows in one transaction. A remembered row is kept too once the file still has the stat it was
   * written with and the clock has moved well past its mtime: a later write would then carry a later mtime.
   */
  flush(tickNs?: bigint): void {
    const nowNs = BigInt(this.clock.now()) * 1_000_000n;
    for (const [path, row] of this.remembered) {
      if (!this.settled(row, nowNs, tickNs)) continue;
      this.remembered.delete(path);
      try {
        const st = lstatSync(path, { bigint: true });
        if (rowMatches(row, st)) this.pending.set(path, row);
      } catch {
        // Gone since: nothing to keep.
      }
    }
    if (this.pending.size === 0) return;
    const rows = [...this.pending];
    try {
      this.db.transaction(() => {
        for (const [path, r] of rows) this.upsert.run(path, r.size, r.mtime_ns, r.ino, r.hash);
      })();
    } catch (err) {
      // Rows are hints: on a full disk they are lost (the next build reads those files again), the build is not.
      if (!isDiskFull(err)) throw err;
    }
    this.pending.clear();
  }

  /**
   * How long a remembered file's mtime must lie in the past before its row is kept: a few ms where the file system
   * stamps with sub-second precision (ext4, xfs, tmpfs), the racy window where it stamps whole seconds.
   */
  private settleNs(row: Row): bigint {
    return row.mtime_ns % 1_000_000_000n === 0n ? this.racyWindowNs : REMEMBERED_SETTLE_NS;
  }

  /**
   * Settled: a later write to the file would carry a later mtime. Past the settle time on the wall clock, or — on a
   * file system stamping below the second — once the kernel's file clock (`tickNs`) has moved past the row's mtime.
   */
  private settled(row: Row, nowNs: bigint, tickNs: bigint | undefined): boolean {
    if (nowNs - row.mtime_ns >= this.settleNs(row)) return true;
    return tickNs !== undefined && row.mtime_ns % 1_000_000_000n !== 0n && tickNs > row.mtime_ns;
  }

  close(): void {
    if (!this.db.open) return;
    // Files written in the last few ms: wait out their mtime tick so they are kept (cheaper than reading them next
    // time) — one tick of the kernel's file clock, read from a stamped file, rather than a margin on the wall clock.
    let tick: bigint | undefined;
    if (this.remembered.size) {
      const nowNs = BigInt(this.clock.now()) * 1_000_000n;
      const waiting = () => [...this.remembered.values()].some((r) => r.mtime_ns % 1_000_000_000n !== 0n && !this.settled(r, nowNs, tick));
      for (let i = 0; i < 25 && (tick = this.fileClock.nowNs()) !== undefined && waiting(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
    this.fileClock.close();
    this.flush(tick);
    this.db.close();
  }
}

/** A row still describes the file as `st` finds it: the same size, mtime and inode (sameStat, against a stored row). */
function rowMatches(row: Row, st: BigIntStats): boolean {
  return row.size === st.size && row.mtime_ns === st.mtimeNs && row.ino === st.ino;
}
