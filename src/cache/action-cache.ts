// The action cache: ActionResults by action key and compile manifests by level-1 key, in SQLite, with the lookups that turn a stored entry into a usable hit.
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";
import { EMPTY_DIGEST, digestOf, sameDigest, type Digest } from "../core/digest.js";
import type { Clock } from "../core/clock.js";
import { ActionResult, CompileManifest } from "../gen/orion/v1/remote_execution.js";
import { compileLevel2Key, isAbsentHeader } from "./keys.js";

/** Most manifests kept under one level-1 key; older ones are dropped first. */
export const MAX_MANIFESTS_PER_KEY = 16;

export interface ActionCache {
  getResult(key: string): ActionResult | undefined;
  /**
   * Stores a successful result; a result with exitCode != 0 is refused (a no-op): compiler errors are never cached —
   * unless `storeFailure` says the caller knows every input the failure depends on (a depgen's output and exit code).
   */
  putResult(key: string, result: ActionResult, options?: { storeFailure?: boolean }): void;
  /** Manifests under a level-1 key, newest first. */
  getManifests(level1: string): CompileManifest[];
  /** Adds a manifest (headers sorted by path); an identical one is moved to the front instead; at most 16 are kept. */
  addManifest(level1: string, manifest: CompileManifest): void;
  stats(): { results: number; manifests: number };
  clear(): void;
  close(): void;
}

export interface SqliteActionCacheOptions {
  /** Time source for created/last_access; the system clock by default. */
  clock?: Pick<Clock, "now">;
}

/** ActionCache over one SQLite file (WAL, busy_timeout) or ":memory:". */
export class SqliteActionCache implements ActionCache {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly q: {
    get: Database.Statement<[string], { result: Buffer }>;
    touch: Database.Statement<[number, string]>;
    put: Database.Statement<[string, Buffer, number, number]>;
    manifests: Database.Statement<[string], { manifest: Buffer }>;
    delManifest: Database.Statement<[string, string]>;
    addManifest: Database.Statement<[string, string, Buffer, number]>;
    trim: Database.Statement<[string, string, number]>;
    count: Database.Statement<[], { results: number; manifests: number }>;
  };

  constructor(path: string, options: SqliteActionCacheOptions = {}) {
    const clock = options.clock;
    this.now = clock ? () => clock.now() : () => Date.now();
    this.db = openDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ac (
        key TEXT PRIMARY KEY,
        result BLOB NOT NULL,
        created INTEGER NOT NULL,
        last_access INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS manifests (
        level1 TEXT NOT NULL,
        digest_of_manifest TEXT NOT NULL,
        manifest BLOB NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (level1, digest_of_manifest)
      );
      CREATE INDEX IF NOT EXISTS manifests_by_age ON manifests (level1, created);
    `);
    // Newest first: by created, then by rowid (a re-added manifest is re-inserted, so it gets the highest rowid).
    const order = "ORDER BY created DESC, rowid DESC";
    this.q = {
      get: this.db.prepare("SELECT result FROM ac WHERE key = ?"),
      touch: this.db.prepare("UPDATE ac SET last_access = ? WHERE key = ?"),
      put: this.db.prepare(
        "INSERT INTO ac (key, result, created, last_access) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT(key) DO UPDATE SET result = excluded.result, created = excluded.created, last_access = excluded.last_access",
      ),
      manifests: this.db.prepare(`SELECT manifest FROM manifests WHERE level1 = ? ${order}`),
      delManifest: this.db.prepare("DELETE FROM manifests WHERE level1 = ? AND digest_of_manifest = ?"),
      addManifest: this.db.prepare("INSERT INTO manifests (level1, digest_of_manifest, manifest, created) VALUES (?, ?, ?, ?)"),
      trim: this.db.prepare(
        `DELETE FROM manifests WHERE level1 = ? AND rowid IN (SELECT rowid FROM manifests WHERE level1 = ? ${order} LIMIT -1 OFFSET ?)`,
      ),
      count: this.db.prepare("SELECT (SELECT COUNT(*) FROM ac) AS results, (SELECT COUNT(*) FROM manifests) AS manifests"),
    };
  }

  getResult(key: string): ActionResult | undefined {
    const row = this.q.get.get(key);
    if (!row) return undefined;
    this.q.touch.run(this.now(), key);
    return ActionResult.decode(row.result);
  }

  putResult(key: string, result: ActionResult, options: { storeFailure?: boolean } = {}): void {
    if (result.exitCode !== 0 && !options.storeFailure) return;
    const now = this.now();
    this.q.put.run(key, Buffer.from(ActionResult.encode(result).finish()), now, now);
  }

  getManifests(level1: string): CompileManifest[] {
    return this.q.manifests.all(level1).map((r) => CompileManifest.decode(r.manifest));
  }

  addManifest(level1: string, manifest: CompileManifest): void {
    const canonical = CompileManifest.fromPartial({
      headers: [...manifest.headers].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    });
    const bytes = Buffer.from(CompileManifest.encode(canonical).finish());
    const digest = digestOf(bytes).hash;
    this.db.transaction(() => {
      this.q.delManifest.run(level1, digest);
      this.q.addManifest.run(level1, digest, bytes, this.now());
      this.q.trim.run(level1, level1, MAX_MANIFESTS_PER_KEY);
    })();
  }

  stats(): { results: number; manifests: number } {
    return this.q.count.get()!;
  }

  clear(): void {
    this.db.exec("DELETE FROM ac; DELETE FROM manifests;");
  }

  close(): void {
    this.db.close();
  }
}

/** The blobs a result needs from the CAS: output files and stdout/stderr not inlined in the result; the empty blob is always present. */
export function referencedDigests(result: ActionResult): Digest[] {
  const out: Digest[] = [];
  const need = (d: Digest | undefined, inline: Uint8Array | undefined): void => {
    if (!d || d.sizeBytes === 0 || sameDigest(d, EMPTY_DIGEST)) return;
    if (inline && inline.length === d.sizeBytes && inline.length > 0) return;
    out.push(d);
  };
  for (const f of result.outputFiles) need(f.digest, f.contents);
  need(result.stdoutDigest, result.stdoutRaw);
  need(result.stderrDigest, result.stderrRaw);
  return out;
}

/** A cached result whose blobs the store still holds; a hit with missing blobs is a miss, not an error. */
export async function lookupValid(
  cache: Pick<ActionCache, "getResult">,
  store: { findMissing(d: Digest[], o?: { verify?: boolean }): Promise<Digest[]> },
  key: string,
): Promise<ActionResult | undefined> {
  const result = cache.getResult(key);
  if (!result) return undefined;
  const needed = referencedDigests(result);
  if (needed.length === 0) return result;
  // Hashed, not stamped: a hit's outputs go to a user's tree, and a rotten one must be a miss (the action runs again).
  const missing = await store.findMissing(needed, { verify: true });
  return missing.length === 0 ? result : undefined;
}

/**
 * The compile look-up: for each manifest under `level1` (newest first), the
 * headers' current digests (`headerDigestOf`: a map look-up in the hashed
 * context, or a stat-cached hash outside it; undefined = that manifest cannot
 * match) and the shadow probes (`probesFor`) make a level-2 key; the first one
 * with a valid result (its blobs still stored) is the hit.
 */
export async function lookupCompile(
  cache: Pick<ActionCache, "getManifests" | "getResult">,
  store: { findMissing(d: Digest[], o?: { verify?: boolean }): Promise<Digest[]> },
  level1: string,
  headerDigestOf: (path: string) => Digest | undefined | Promise<Digest | undefined>,
  probesFor: (headers: string[]) => string[],
  /** Told the headers of the manifest that matched, when one did. */
  onMatch?: (headers: { path: string; digest: Digest }[]) => void,
): Promise<ActionResult | undefined> {
  for (const manifest of cache.getManifests(level1)) {
    let matches = true;
    for (const h of manifest.headers) {
      const now = await headerDigestOf(h.path);
      if (isAbsentHeader(h.digest) ? now !== undefined : !sameDigest(now, h.digest)) {
        matches = false;
        break;
      }
    }
    if (!matches) continue;
    const headers = manifest.headers.map((h) => ({ path: h.path, digest: h.digest! }));
    const level2 = compileLevel2Key(level1, headers, probesFor(headers.map((h) => h.path)));
    const result = await lookupValid(cache, store, level2);
    if (result) {
      onMatch?.(headers);
      return result;
    }
  }
  return undefined;
}
