// Learned action durations (by kind and label, an moving average over builds) that order the ready queue by critical path.
import type Database from "better-sqlite3";
import { openDatabase } from "../core/sqlite.js";
import { isDiskFull } from "../core/disk-full.js";

export interface DurationHistory {
  /** Expected milliseconds for an action, or undefined when it never ran. */
  estimate(kind: string, label: string): number | undefined;
  record(kind: string, label: string, ms: number): void;
  close(): void;
}

/** Weight of the newest run in the moving average: recent builds matter most, one outlier does not rule. */
const ALPHA = 0.5;

export class SqliteDurationHistory implements DurationHistory {
  private readonly db: Database.Database;
  private known?: Map<string, number>;
  private readonly upsert: Database.Statement<[string, number]>;

  constructor(path: string) {
    this.db = openDatabase(path);
    this.db.exec("CREATE TABLE IF NOT EXISTS durations (key TEXT PRIMARY KEY, ms REAL NOT NULL)");
    this.upsert = this.db.prepare("INSERT INTO durations (key, ms) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET ms = excluded.ms");
  }

  estimate(kind: string, label: string): number | undefined {
    // One read of the whole table on first use: a build asks for every one of its actions.
    this.known ??= new Map((this.db.prepare("SELECT key, ms FROM durations").all() as { key: string; ms: number }[]).map((r) => [r.key, r.ms]));
    return this.known.get(`${kind}\0${label}`);
  }

  record(kind: string, label: string, ms: number): void {
    const key = `${kind}\0${label}`;
    const before = this.estimate(kind, label);
    const next = before === undefined ? ms : ALPHA * ms + (1 - ALPHA) * before;
    this.known!.set(key, next);
    try {
      this.upsert.run(key, next);
    } catch (err) {
      // A duration only orders the queue: a full disk costs this build's learning, never the build.
      if (!isDiskFull(err)) throw err;
    }
  }

  close(): void {
    this.db.close();
  }
}
