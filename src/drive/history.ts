// What each tree's last make-driven build counted, so the next one's build-start (and its progress line) can say how
// many actions to expect before make has issued them.
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../core/fs.js";
import type { Summary } from "../scheduler/index.js";

/** Trees remembered at most; the oldest are forgotten first. */
const MAX_TREES = 200;

type Counts = { actions: number; hostSteps: number };

export class DriveHistory {
  constructor(private readonly file: string) {}

  predict(dir: string): Counts | undefined {
    return this.read()[dir];
  }

  /** Best effort: a history that cannot be written only costs the next build its prediction. */
  remember(dir: string, s: Summary): void {
    const all = this.read();
    delete all[dir];
    all[dir] = { actions: s.actions, hostSteps: s.hostSteps };
    const kept = Object.entries(all).slice(-MAX_TREES);
    try {
      writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(kept)));
    } catch {
      // A read-only or full cache dir.
    }
  }

  private read(): Record<string, Counts> {
    try {
      const v: unknown = JSON.parse(readFileSync(this.file, "utf8"));
      return v && typeof v === "object" ? (v as Record<string, Counts>) : {};
    } catch {
      return {};
    }
  }
}
