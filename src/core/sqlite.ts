// Every SQLite file Orion keeps is opened one way: WAL (readers never block the writer, several processes share it), a busy timeout, NORMAL sync.
import Database from "better-sqlite3";

/** Waiting this long for another process's write lock beats failing a build. */
const BUSY_TIMEOUT_MS = 10_000;

export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("journal_mode = WAL");
  // With WAL, NORMAL loses at most the last commits on a power cut, never consistency.
  db.pragma("synchronous = NORMAL");
  return db;
}
