// Durations on the command line and in configuration: a number and a unit ("500ms", "90s", "2m", "1h", "30d"); a bare
// number is seconds, as for timeout(1).

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration, or why it is not one (naming `what`, the flag or key it came from). */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`${what}: "${text}" is not a duration (a number and a unit: 500ms, 90s, 2m, 1h, 30d)`);
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]!);
  if (!Number.isSafeInteger(ms)) throw new Error(`${what}: "${text}" is too long a duration`);
  return ms;
}

/** A duration for a message: "60 s", "1.5 s", "250 ms", "5 min". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Number((ms / 1_000).toFixed(1))} s`;
  return `${Number((ms / 60_000).toFixed(1))} min`;
}
