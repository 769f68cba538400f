// The local content-addressed store: verified blob files in sharded folders, indexed and LRU-evicted through SQLite.
import { makeDirSync } from "../core/fs.js";
import { createHash, randomBytes } from "node:crypto";
import { type Stats, createReadStream, readdirSync, statSync, unlinkSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { dirname, join } from "node:path";
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";
import {
  CorruptBlobError,
  OrionError,
  Status,
  digestKey,
  digestOf,
  digestOfFile,
  sameDigest,
  systemClock,
  type Clock,
  type Digest,
  type Logger,
} from "../core/index.js";
import type { BlobStore, FindMissingOptions } from "./blob-store.js";

export interface SqliteBlobStoreOptions {
  /** Root folder: holds `cas.db`, `blobs/` and `tmp/`. */
  dir: string;
  /** Eviction starts when the store holds more than this; it stops below 90% of it. Default 10 GiB. */
  maxBytes?: number;
  /** fsync each blob before renaming it into place (survives power loss, costs latency). Default false. */
  fsync?: boolean;
  clock?: Clock;
  /** Told each time a stored blob is found not to match its digest (it has been dropped by then). */
  logger?: Logger;
  /**
   * This process alone writes and evicts the store (a head's or a node's data dir, not a user's cache that many
   * processes share): a blob found present stays known present until this store drops or evicts it, so a look-up
   * asked again (every action's input tree) costs no stat. Default false.
   */
  soleWriter?: boolean;
}

/** What `verifyAll` found and repaired. */
export interface VerifyReport {
  /** Blobs indexed and checked by hashing. */
  checked: number;
  /** Indexed blobs whose bytes did not match their digest: dropped (row and file). */
  rotten: number;
  /** Index rows whose file was gone or had the wrong size: dropped. */
  missing: number;
  /** Files under blobs/ with no row: indexed when their bytes match their name, else removed. */
  orphansIndexed: number;
  orphansRemoved: number;
  /** Bytes held after the repairs. */
  bytes: number;
}

export const DEFAULT_MAX_BYTES = 10 * 1024 ** 3;
/** Pending last-access updates are written in one transaction once this many pile up. */
const TOUCH_BATCH = 256;
/** Temp files older than this are leftovers of a crashed writer, not an in-flight write. */
const STALE_TMP_MS = 60 * 60 * 1000;
const STAT_CONCURRENCY = 64;
const VERIFY_CONCURRENCY = 8;
/** Entries of the hashed-intact memo before it starts over (a Redis build's outputs are ~1,000 blobs). */
const HASHED_MEMO_MAX = 100_000;
/** Blobs a sole writer remembers as present (a few hundred thousand files' worth of projects). */
const PRESENT_MEMO_MAX = 1_000_000;
const HASH_RE = /^[0-9a-f]{64}$/;

function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === "object" && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? "");
}

async function exists(path: string): Promise<boolean> {
  return fsp.access(path).then(
    () => true,
    () => false,
  );
}

/** Copies `src` to a new file `dest` (mode `mode`) and returns the digest of the bytes written. */
async function copyHashing(src: string, dest: string, mode: number): Promise<Digest> {
  const hash = createHash("sha256");
  let size = 0;
  const fh = await fsp.open(dest, "wx", mode);
  try {
    for await (const chunk of createReadStream(src, { highWaterMark: 1024 * 1024 })) {
      const buf = chunk as Buffer;
      hash.update(buf);
      size += buf.length;
      await fh.write(buf);
    }
    await fh.chmod(mode); // the umask may have narrowed the mode given to open
  } finally {
    await fh.close();
  }
  return { hash: hash.digest("hex"), sizeBytes: size };
}

/** Copies a blob this process has just hashed (see hashedIntact): a kernel copy, no second hash. */
async function copyPlain(src: string, dest: string, mode: number, digest: Digest): Promise<Digest> {
  await fsp.copyFile(src, dest, fsp.constants.COPYFILE_EXCL);
  await fsp.chmod(dest, mode);
  const st = await fsp.stat(dest);
  return { hash: digest.hash, sizeBytes: st.size };
}

/** What moves when anything touches a file's bytes or times: a blob hashed under one stamp is the same bytes under it. */
function stampOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

async function unlinkQuiet(path: string): Promise<void> {
  await fsp.unlink(path).catch((err: unknown) => {
    if (!isErrno(err, "ENOENT")) throw err;
  });
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class SqliteBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly tmpDir: string;
  private readonly maxBytes: number;
  private readonly fsync: boolean;
  private readonly clock: Clock;
  private readonly logger?: Logger;
  private readonly db: Database.Database;
  /** Shard folders known to exist; saves a mkdir per put. */
  private readonly shards = new Set<string>();
  /**
   * Blobs this process stored or hashed intact, by hash → the file's stamp then (inode, size, mtime, ctime). copyOut
   * and materialize do not hash such a blob again while the stamp holds (a cache hit's look-up hashed it a moment ago,
   * or an action of this build stored it): any write, chmod or utimes moves ctime, so only rot below the file system
   * within one process's life could slip by. Another process always hashes first.
   */
  private readonly hashedIntact = new Map<string, string>();
  /** hash → last access time not yet written to the index; lost on a crash, which only skews LRU order. */
  private readonly touches = new Map<string, number>();
  /** With soleWriter: hash → size of the blobs known present (see SqliteBlobStoreOptions.soleWriter). */
  private readonly knownPresent?: Map<string, number>;
  private readonly stmt: {
    row: Database.Statement<[string], { size: number; mtime_ms: number }>;
    insert: Database.Statement<[string, number, number, number]>;
    setMtime: Database.Statement<[number, string]>;
    remove: Database.Statement<[string]>;
    touch: Database.Statement<[number, string]>;
    total: Database.Statement<[], { v: number }>;
    oldest: Database.Statement<[number], { hash: string; size: number }>;
  };

  /** Throws the file system's error when the folders cannot be made; `createBlobStore` turns that into an OrionError. */
  constructor(options: SqliteBlobStoreOptions) {
    this.blobsDir = join(options.dir, "blobs");
    this.tmpDir = join(options.dir, "tmp");
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.fsync = options.fsync ?? false;
    this.knownPresent = options.soleWriter ? new Map() : undefined;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger?.child({ module: "cas" });
    makeDirSync(this.blobsDir);
    makeDirSync(this.tmpDir);
    this.removeStaleTemps();

    this.db = openDatabase(join(options.dir, "cas.db"));
    // The running total lives in the index itself, kept by triggers, so every process sharing the store sees one number.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS blobs (
        hash TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        last_access INTEGER NOT NULL,
        mtime_ms INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS blobs_last_access ON blobs (last_access);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta (k, v) VALUES ('total_bytes', 0);
      CREATE TRIGGER IF NOT EXISTS blobs_add AFTER INSERT ON blobs
        BEGIN UPDATE meta SET v = v + NEW.size WHERE k = 'total_bytes'; END;
      CREATE TRIGGER IF NOT EXISTS blobs_drop AFTER DELETE ON blobs
        BEGIN UPDATE meta SET v = v - OLD.size WHERE k = 'total_bytes'; END;
    `);
    // Stores made before the mtime column: every blob gets re-verified once.
    const columns = this.db.prepare("PRAGMA table_info(blobs)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "mtime_ms")) this.db.exec("ALTER TABLE blobs ADD COLUMN mtime_ms INTEGER NOT NULL DEFAULT 0");
    this.stmt = {
      row: this.db.prepare("SELECT size, mtime_ms FROM blobs WHERE hash = ?"),
      insert: this.db.prepare(
        "INSERT INTO blobs (hash, size, last_access, mtime_ms) VALUES (?, ?, ?, ?) ON CONFLICT(hash) DO UPDATE SET mtime_ms = excluded.mtime_ms",
      ),
      setMtime: this.db.prepare("UPDATE blobs SET mtime_ms = ? WHERE hash = ?"),
      remove: this.db.prepare("DELETE FROM blobs WHERE hash = ?"),
      touch: this.db.prepare("UPDATE blobs SET last_access = max(last_access, ?) WHERE hash = ?"),
      total: this.db.prepare("SELECT v FROM meta WHERE k = 'total_bytes'"),
      oldest: this.db.prepare("SELECT hash, size FROM blobs ORDER BY last_access, rowid LIMIT ?"),
    };
  }

  async findMissing(digests: readonly Digest[], options?: FindMissingOptions): Promise<Digest[]> {
    const present = new Array<boolean>(digests.length).fill(false);
    let next = 0;
    const check = options?.verify ? (d: Digest) => this.isIntact(d) : (d: Digest) => this.isPresent(d);
    // Hashing is CPU-bound on this thread: a few reads in flight keep the disk busy, more would only queue.
    const width = options?.verify ? VERIFY_CONCURRENCY : STAT_CONCURRENCY;
    const worker = async () => {
      while (next < digests.length) {
        const i = next++;
        present[i] = await check(digests[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, digests.length) }, worker));
    return digests.filter((_, i) => !present[i]);
  }

  async has(digest: Digest): Promise<boolean> {
    return this.isPresent(digest);
  }

  async put(data: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = digestOf(data);
    this.checkExpected(digest, expected);
    if (await this.isPresent(digest)) {
      this.markAccess(digest.hash);
      return digest;
    }
    const tmp = this.tmpPath(digest.hash);
    const fh = await fsp.open(tmp, "wx", 0o444);
    try {
      await fh.writeFile(data);
      if (this.fsync) await fh.sync();
    } catch (err) {
      await fh.close();
      await unlinkQuiet(tmp);
      throw err;
    }
    await fh.close();
    await this.commit(tmp, digest);
    return digest;
  }

  async putFile(path: string, expected?: Digest): Promise<Digest> {
    // Copy and hash in one pass, so the bytes verified are exactly the bytes stored even if `path` changes meanwhile.
    const tmp = this.tmpPath(randomBytes(8).toString("hex"));
    const fh = await fsp.open(tmp, "wx", 0o444);
    const hash = createHash("sha256");
    let size = 0;
    let digest: Digest;
    try {
      for await (const chunk of createReadStream(path)) {
        const buf = chunk as Buffer;
        hash.update(buf);
        size += buf.length;
        await fh.write(buf);
      }
      if (this.fsync) await fh.sync();
      digest = { hash: hash.digest("hex"), sizeBytes: size };
      this.checkExpected(digest, expected);
    } catch (err) {
      await fh.close();
      await unlinkQuiet(tmp);
      throw err;
    }
    await fh.close();
    if (await this.isPresent(digest)) {
      await unlinkQuiet(tmp);
      this.markAccess(digest.hash);
      return digest;
    }
    await this.commit(tmp, digest);
    return digest;
  }

  async adoptFile(path: string): Promise<Digest> {
    const data = await fsp.readFile(path);
    const digest = digestOf(data);
    if (await this.isPresent(digest)) {
      await unlinkQuiet(path);
      this.markAccess(digest.hash);
      return digest;
    }
    await fsp.chmod(path, 0o444);
    try {
      await this.commit(path, digest);
    } catch (err) {
      // Another file system (EXDEV) or a vanished shard: fall back to a copy.
      if (!isErrno(err, "EXDEV")) throw err;
      await this.put(data, digest);
      await unlinkQuiet(path);
    }
    return digest;
  }

  async copyOut(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    if (!(await this.isPresent(digest))) return false;
    const tmp = `${dest}.orion-tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
    try {
      const src = this.blobPath(digest.hash);
      const mode = executable ? 0o755 : 0o644;
      // Hashed as it is copied (one read): the user's tree never receives bytes that are not the blob.
      const copied = (await this.hashedSinceUntouched(digest.hash)) ? await copyPlain(src, tmp, mode, digest) : await copyHashing(src, tmp, mode);
      if (!sameDigest(copied, digest)) {
        await unlinkQuiet(tmp);
        await this.dropRotten(digest.hash, "copying it out");
        return false;
      }
      await fsp.rename(tmp, dest);
    } catch (err) {
      await unlinkQuiet(tmp);
      if (isErrno(err, "ENOENT") && !(await exists(this.blobPath(digest.hash)))) return this.gone(digest.hash); // evicted meanwhile
      throw err;
    }
    this.markAccess(digest.hash);
    return true;
  }

  async get(digest: Digest): Promise<Buffer | undefined> {
    if (!HASH_RE.test(digest.hash)) return undefined;
    let data: Buffer;
    try {
      data = await fsp.readFile(this.blobPath(digest.hash));
    } catch (err) {
      // Removed behind this store's back (another process's verify): no longer known present.
      if (isErrno(err, "ENOENT", "ENOTDIR")) return this.gone(digest.hash) || undefined;
      throw err;
    }
    const actual = digestOf(data);
    if (actual.hash !== digest.hash) {
      // Truncated or bit-rotted: never serve it, and forget it so the next findMissing asks for a fresh copy.
      await this.dropRotten(digest.hash, "reading it");
      return undefined;
    }
    if (actual.sizeBytes !== digest.sizeBytes) return undefined; // a request with the wrong size; the file is fine
    this.markAccess(digest.hash);
    return data;
  }

  async materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    if (!(await this.isPresent(digest))) return false;
    await fsp.mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.orion-tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
    try {
      if (executable) {
        // A hard link shares the stored file's mode, so executables get their own copy; copying also verifies.
        const data = await this.get(digest);
        if (!data) return false;
        await fsp.writeFile(tmp, data, { mode: 0o555, flag: "wx" });
        await fsp.chmod(tmp, 0o555); // the umask may have narrowed the mode given to open
      } else {
        // The link shares the stored inode, so the stored bytes are checked first (unless this process has just
        // stored or hashed them and the file has not been touched since): a context never holds rot.
        if (!(await this.hashedSinceUntouched(digest.hash)) && !(await this.isIntact(digest))) return false;
        try {
          await fsp.link(this.blobPath(digest.hash), tmp);
        } catch (err) {
          if (isErrno(err, "ENOENT")) return this.gone(digest.hash); // evicted or dropped by another process just now
          if (!isErrno(err, "EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "EACCES")) throw err;
          const data = await this.get(digest);
          if (!data) return false;
          await fsp.writeFile(tmp, data, { mode: 0o444, flag: "wx" });
          await fsp.chmod(tmp, 0o444);
        }
      }
      await fsp.rename(tmp, dest);
    } finally {
      // rename(2) is a no-op that leaves `tmp` behind when `dest` is already a link to the same file.
      await unlinkQuiet(tmp);
    }
    this.markAccess(digest.hash);
    return true;
  }

  sizeBytes(): number {
    return this.stmt.total.get()?.v ?? 0;
  }

  close(): void {
    if (!this.db.open) return;
    this.flushTouches();
    this.db.close();
  }

  /** Where a blob's file lives; exposed for tests and for tools that inspect the store. */
  blobPath(hash: string): string {
    // Digests arrive from the network; a "hash" such as "../../x" must never become a path.
    if (!HASH_RE.test(hash)) {
      throw new OrionError(`not a SHA-256 hash: ${JSON.stringify(hash)}`, { code: Status.INVALID_ARGUMENT });
    }
    return join(this.blobsDir, hash.slice(0, 2), hash);
  }

  /**
   * Index row with the right size and a file with that size and the mtime it had when it was
   * stored: cheap (one stat), and catches truncation and overwrites without re-hashing. A file
   * whose mtime moved is re-hashed once: kept (and re-stamped) when intact, dropped when not.
   */
  private async isPresent(digest: Digest): Promise<boolean> {
    if (!HASH_RE.test(digest.hash)) return false;
    if (this.knownPresent?.get(digest.hash) === digest.sizeBytes) return true;
    const present = await this.checkPresent(digest);
    if (present) this.rememberPresent(digest.hash, digest.sizeBytes);
    return present;
  }

  /** A blob found missing where it was expected: no longer known present. Always false. */
  private gone(hash: string): false {
    this.knownPresent?.delete(hash);
    return false;
  }

  private rememberPresent(hash: string, size: number): void {
    if (!this.knownPresent) return;
    if (this.knownPresent.size >= PRESENT_MEMO_MAX) this.knownPresent.clear();
    this.knownPresent.set(hash, size);
  }

  private async checkPresent(digest: Digest): Promise<boolean> {
    const row = this.stmt.row.get(digest.hash);
    if (!row || row.size !== digest.sizeBytes) return false;
    const path = this.blobPath(digest.hash);
    try {
      const st = await fsp.stat(path);
      if (st.size === digest.sizeBytes) {
        // Within 2 ms: the index keeps whole milliseconds, and a restored stamp may come back a hair off.
        if (Math.abs(st.mtimeMs - row.mtime_ms) < 2) return true;
        if (sameDigest(await digestOfFile(path), digest)) {
          this.stmt.setMtime.run(Math.floor(st.mtimeMs), digest.hash);
          return true;
        }
      }
    } catch (err) {
      if (!isErrno(err, "ENOENT", "ENOTDIR")) throw err;
    }
    // The file vanished (another process evicted it) or shrank: the row is stale.
    await this.drop(digest.hash);
    return false;
  }

  /** Whether this process stored or hashed the blob and its file still has the stamp it had then. */
  private async hashedSinceUntouched(hash: string): Promise<boolean> {
    const known = this.hashedIntact.get(hash);
    if (known === undefined) return false;
    const st = await fsp.stat(this.blobPath(hash)).catch(() => undefined);
    return !!st && stampOf(st) === known;
  }

  private rememberHashed(hash: string, st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): void {
    if (this.hashedIntact.size >= HASHED_MEMO_MAX) this.hashedIntact.clear();
    this.hashedIntact.set(hash, stampOf(st));
  }

  /** Present (as isPresent says) and its bytes hash to its digest; a rotten blob is dropped. */
  private async isIntact(digest: Digest): Promise<boolean> {
    if (!(await this.isPresent(digest))) return false;
    const path = this.blobPath(digest.hash);
    let actual: Digest;
    let st: Stats;
    try {
      st = await fsp.stat(path);
      actual = await digestOfFile(path);
    } catch (err) {
      if (isErrno(err, "ENOENT", "ENOTDIR")) return this.gone(digest.hash); // evicted meanwhile
      throw err;
    }
    if (sameDigest(actual, digest)) {
      this.rememberHashed(digest.hash, st);
      return true;
    }
    await this.dropRotten(digest.hash, "verifying it");
    return false;
  }

  /**
   * Checks every blob of the store by hashing it and repairs the index: rotten blobs and rows
   * without their file are dropped; files without a row are indexed when their bytes match their
   * name, removed otherwise. Leftover temp files of crashed writers go too. Safe beside a running daemon or build.
   */
  async verifyAll(): Promise<VerifyReport> {
    this.flushTouches();
    // What it repairs is asked again afterwards.
    this.knownPresent?.clear();
    const report: VerifyReport = { checked: 0, rotten: 0, missing: 0, orphansIndexed: 0, orphansRemoved: 0, bytes: 0 };
    const rows = this.db.prepare("SELECT hash, size FROM blobs").all() as { hash: string; size: number }[];
    const indexed = new Set<string>();
    await forEachLimited(rows, VERIFY_CONCURRENCY, async (row) => {
      indexed.add(row.hash);
      if (!HASH_RE.test(row.hash)) {
        this.stmt.remove.run(row.hash);
        report.missing++;
        return;
      }
      const path = this.blobPath(row.hash);
      let actual: Digest;
      try {
        actual = await digestOfFile(path);
      } catch (err) {
        if (!isErrno(err, "ENOENT", "ENOTDIR", "EISDIR")) throw err;
        await this.drop(row.hash);
        report.missing++;
        return;
      }
      report.checked++;
      if (actual.hash === row.hash && actual.sizeBytes === row.size) {
        // Re-stamp: the bytes were just proven right, whatever the mtime says.
        const st = await fsp.stat(path);
        this.stmt.setMtime.run(Math.floor(st.mtimeMs), row.hash);
        return;
      }
      await this.drop(row.hash);
      report.rotten++;
    });
    for (const shard of await fsp.readdir(this.blobsDir).catch(() => [] as string[])) {
      const dir = join(this.blobsDir, shard);
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (indexed.has(name)) continue;
        const path = join(dir, name);
        const actual = HASH_RE.test(name) && name.slice(0, 2) === shard ? await digestOfFile(path).catch(() => undefined) : undefined;
        if (actual && actual.hash === name) {
          const st = await fsp.stat(path);
          await fsp.chmod(path, 0o444);
          this.stmt.insert.run(name, actual.sizeBytes, this.clock.now(), Math.floor(st.mtimeMs));
          report.orphansIndexed++;
        } else {
          await fsp.rm(path, { force: true, recursive: true });
          report.orphansRemoved++;
        }
      }
    }
    // Only a crashed writer's leftovers: another process may be writing into this store right now.
    this.removeStaleTemps();
    // The running total is kept by triggers; recount it so a store damaged behind its back agrees with its rows.
    this.db.prepare("UPDATE meta SET v = (SELECT COALESCE(SUM(size), 0) FROM blobs) WHERE k = 'total_bytes'").run();
    report.bytes = this.sizeBytes();
    return report;
  }

  private async dropRotten(hash: string, when: string): Promise<void> {
    this.logger?.warn({ digest: hash }, `a stored blob does not match its digest (found ${when}); dropped`);
    await this.drop(hash);
  }

  private checkExpected(actual: Digest, expected: Digest | undefined): void {
    if (expected && !sameDigest(actual, expected)) {
      throw new CorruptBlobError(
        `blob does not match its digest: expected ${digestKey(expected)}, got ${digestKey(actual)}`,
      );
    }
  }

  /** Renames a verified temp file into place, then indexes it: a row never names a file that is not yet complete. */
  private async commit(tmp: string, digest: Digest): Promise<void> {
    const final = this.blobPath(digest.hash);
    try {
      const shard = dirname(final);
      if (!this.shards.has(shard)) {
        await fsp.mkdir(shard, { recursive: true });
        this.shards.add(shard);
      }
      await fsp.rename(tmp, final);
    } catch (err) {
      await unlinkQuiet(tmp);
      throw err;
    }
    const st = await fsp.stat(final);
    this.stmt.insert.run(digest.hash, digest.sizeBytes, this.clock.now(), Math.floor(st.mtimeMs));
    // Its bytes were hashed on the way in: until the file is touched, no reader of this process hashes them again.
    this.rememberHashed(digest.hash, st);
    this.rememberPresent(digest.hash, digest.sizeBytes);
    this.touches.delete(digest.hash);
    this.evictIfNeeded();
  }

  private async drop(hash: string): Promise<void> {
    this.hashedIntact.delete(hash);
    this.knownPresent?.delete(hash);
    await unlinkQuiet(this.blobPath(hash));
    this.stmt.remove.run(hash);
    this.touches.delete(hash);
  }

  private markAccess(hash: string): void {
    this.touches.set(hash, this.clock.now());
    if (this.touches.size >= TOUCH_BATCH) this.flushTouches();
  }

  private flushTouches(): void {
    if (this.touches.size === 0) return;
    const batch = [...this.touches];
    this.touches.clear();
    this.db.transaction(() => {
      for (const [hash, at] of batch) this.stmt.touch.run(at, hash);
    })();
  }

  private evictIfNeeded(): void {
    if (this.sizeBytes() <= this.maxBytes) return;
    this.flushTouches();
    const target = Math.floor(this.maxBytes * 0.9);
    // Sync unlinks keep eviction one uninterrupted step; a reader that loses the race sees ENOENT and reports "missing".
    while (this.sizeBytes() > target) {
      const victims = this.stmt.oldest.all(64);
      if (victims.length === 0) break;
      let total = this.sizeBytes();
      for (const v of victims) {
        if (total <= target) break;
        try {
          unlinkSync(this.blobPath(v.hash));
        } catch (err) {
          if (!isErrno(err, "ENOENT")) throw err;
        }
        this.stmt.remove.run(v.hash);
        this.knownPresent?.delete(v.hash);
        total -= v.size;
      }
    }
  }

  private tmpPath(label: string): string {
    return join(this.tmpDir, `${label}.${process.pid}.${randomBytes(6).toString("hex")}`);
  }

  private removeStaleTemps(): void {
    const cutoff = Date.now() - STALE_TMP_MS;
    for (const name of readdirSync(this.tmpDir)) {
      const p = join(this.tmpDir, name);
      try {
        if (statSync(p).mtimeMs < cutoff) unlinkSync(p);
      } catch {
        // Another process cleaned it up first.
      }
    }
  }
}
