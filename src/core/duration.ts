// Durations on the command line and in configuration: a number and a unit ("500ms", "90s", "2m", "1h", "30d"); a bare
// number is seconds, as for timeout(1).

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration, or why it is not one (naming `what`, the flag or key it came from); at most `maxMs`. */
export function parseDuration(text: string, what: string, maxMs = Number.MAX_SAFE_INTEGER): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`${what}: "${text}" is not a duration (a number and a unit: 500ms, 90s, 2m, 1h, 30d)`);
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]!);
  if (!Number.isSafeInteger(ms) || ms > maxMs) throw new Error(`${what}: "${text}" is too long a duration (at most ${formatDuration(maxMs)})`);
  return ms;
}

/** A duration for a message: "60 s", "1.5 s", "250 ms", "5 min", "7 d". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Number((ms / 1_000).toFixed(1))} s`;
  if (ms < 2 * 86_400_000) return `${Number((ms / 60_000).toFixed(1))} min`;
  return `${Number((ms / 86_400_000).toFixed(1))} d`;
}

/** The longest --no-node-timeout the head takes: longer is a hang by another name. */
export const MAX_NO_NODE_TIMEOUT_MS = 7 * 86_400_000;
