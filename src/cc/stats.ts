// The `orion cc` counters (hits, misses, uncacheable calls, local/remote compiles, fallbacks) in a small SQLite table shared by every process using one cache dir.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";

const CC_COUNTERS = ["hits", "misses", "uncacheable", "localCompiles", "remoteCompiles", "fallbacks"] as const;
export type CcCounter = (typeof CC_COUNTERS)[number];
export type CcCounts = Record<CcCounter, number>;

function ccStatsPath(cacheDir: string): string {
  return join(cacheDir, "cc-stats.db");
}

function zeros(): CcCounts {
  return Object.fromEntries(CC_COUNTERS.map((c) => [c, 0])) as CcCounts;
}

/** SQLITE_BUSY/LOCKED, directly or as the cause of a wrapping error (openCacheDir wraps what it throws). */
function isBusy(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === "string" ? e.code : "";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return true;
  }
  return false;
}

/** Opens a SQLite file, retrying while another process holds the lock that first-time set-up (WAL, tables) needs. */
export function openWithRetry<T>(open: () => T, attempts = 40): T {
  for (let i = 1; ; i++) {
    try {
      return open();
    } catch (err) {
      if (i >= attempts || !isBusy(err)) throw err;
      // A synchronous back-off: this runs once per process, before anything else is in flight.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5 + Math.floor(Math.random() * 20));
    }
  }
}

export class CcStats {
  private readonly db: Database.Database;
  private readonly bumpStmt: Database.Statement<[string, number]>;

  constructor(cacheDir: string) {
    this.db = openWithRetry(() => {
      const db = openDatabase(ccStatsPath(cacheDir));
      try {
        db.exec("CREATE TABLE IF NOT EXISTS cc_stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
        return db;
      } catch (err) {
        db.close();
        throw err;
      }
    });
    this.bumpStmt = this.db.prepare("INSERT INTO cc_stats (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
  }

  bump(counter: CcCounter, by = 1): void {
    this.bumpStmt.run(counter, by);
  }

  read(): CcCounts {
    const out = zeros();
    for (const r of this.db.prepare("SELECT name, value FROM cc_stats").all() as { name: string; value: number }[]) {
      if ((CC_COUNTERS as readonly string[]).includes(r.name)) out[r.name as CcCounter] = r.value;
    }
    return out;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The counters of a cache dir, all zero when no `orion cc` call has used it (nothing is created). */
  static readCounts(cacheDir: string): CcCounts {
    if (!existsSync(ccStatsPath(cacheDir))) return zeros();
    const s = new CcStats(cacheDir);
    try {
      return s.read();
    } finally {
      s.close();
    }
  }
}
