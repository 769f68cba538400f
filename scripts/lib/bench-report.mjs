// Statistics, tables and the raw-numbers file shared by the build benchmarks' reports (scripts/bench-local, bench-cc, bench-redis).
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";

export const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** times (one per round) → { times, median, min, max } */
export const summarize = (times) => ({ times, median: median(times), min: Math.min(...times), max: Math.max(...times) });

export const f3 = (x) => x.toFixed(3);

/**
 * Ratios are taken within each round (the two runs sit minutes apart, not rounds apart), then the median of those:
 * on a shared machine whose load drifts, that is much steadier than a ratio of medians.
 */
export const perRound = (num, den) => num.times.map((t, i) => t / den.times[i]);

/** rows: [label, stats, extra?] → the scenario table (median, min, max, every round's time, then `extra`). */
export function scenarioTable(rows, unit = "s") {
  const w = Math.max(14, ...rows.map(([label]) => label.length + 2));
  let out = `${"scenario".padEnd(w)}${`median ${unit}`.padStart(10)}${`min ${unit}`.padStart(10)}${`max ${unit}`.padStart(10)}   runs\n`;
  for (const [label, s, extra] of rows) {
    out += `${label.padEnd(w)}${f3(s.median).padStart(10)}${f3(s.min).padStart(10)}${f3(s.max).padStart(10)}   ${s.times.map(f3).join(" ")}${extra ? `   ${extra}` : ""}\n`;
  }
  return out;
}

/** A plain-text table: header cells, then rows of cells, each column as wide as its widest cell. */
export function textTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("  ").trimEnd() + "\n";
  return line(header) + line(widths.map((n) => "-".repeat(n))) + rows.map(line).join("");
}

export const loadLine = (loadStart) => `load average ${loadStart} at start, ${loadavg().map((x) => x.toFixed(2)).join(" ")} at end`;

/** Writes the raw numbers (with the date, machine and load) as JSON to path. */
export function writeResult(path, loadStart, fields) {
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), node: process.version },
    loadavg: { start: loadStart, end: loadavg() },
    ...fields,
  };
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
}
