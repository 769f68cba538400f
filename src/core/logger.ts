// The process's one pino root logger is made in its main and passed down; library code takes a Logger.
import { dirname } from "node:path";
import { pino, type Logger } from "pino";
import { makeDirSync } from "./fs.js";

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** A file to append JSON lines to; standard error when absent. */
  file?: string;
  /** Where lines go instead of standard error when there is no file (a served build's: its client's stderr). */
  stream?: { write(line: string): unknown };
}

export function createRootLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.ORION_LOG_LEVEL ?? "warn";
  // The log file's folder is made here, not by pino (its recursive mkdir never returns under /proc).
  if (options.file) makeDirSync(dirname(options.file));
  const dest = options.file ? pino.destination({ dest: options.file, sync: false }) : (options.stream ?? pino.destination(2));
  return pino({ level, base: { pid: process.pid } }, dest);
}

export const silentLogger: Logger = pino({ level: "silent" });
