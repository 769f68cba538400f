// The process's one pino root logger is made in its main and passed down; library code takes a Logger.
import { pino, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** A file to append JSON lines to; standard error when absent. */
  file?: string;
}

export function createRootLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.ORION_LOG_LEVEL ?? "warn";
  const dest = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination(2);
  return pino({ level, base: { pid: process.pid } }, dest);
}

export const silentLogger: Logger = pino({ level: "silent" });
