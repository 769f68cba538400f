// Races make's graph does not order. make -j runs a step (a traced line) beside tool calls it believes independent;
// when the step's trace and a tool call's inputs and outputs say otherwise — the step wrote a header a compile read at
// the same time, or read a file a tool was writing — what the build made depends on timing. The watch finds such
// pairs once both have ended; the build then puts them right (see runDriven): the tool call's outputs are removed, the
// step runs again, and make runs once more, redoing through the cache exactly what the race left stale.

/** A tool call or a step as the watch sees it: when it ran and the absolute paths it read and wrote. */
export interface Span {
  label: string;
  start: number;
  end: number;
  reads: ReadonlySet<string>;
  writes: ReadonlySet<string>;
}

export interface StepSpan extends Span {
  /** Runs the step again (through the step cache: its inputs changed, so it runs). */
  rerun(): Promise<void>;
}

export interface Conflict {
  tool: Span;
  step: StepSpan;
  path: string;
  /** Who wrote `path` while the other read (or also wrote) it. */
  writer: "step" | "tool";
}

export class ConflictWatch {
  private readonly tools: Span[] = [];
  private readonly steps: StepSpan[] = [];
  readonly found: Conflict[] = [];

  toolEnded(tool: Span): void {
    this.tools.push(tool);
    for (const step of this.steps) this.check(tool, step);
  }

  stepEnded(step: StepSpan): void {
    this.steps.push(step);
    for (const tool of this.tools) this.check(tool, step);
  }

  /** The tool calls whose outputs must go, and the steps to run again, each once. */
  repairs(): { tools: Span[]; steps: StepSpan[] } {
    return {
      tools: [...new Set(this.found.filter((c) => c.writer === "step").map((c) => c.tool))],
      steps: [...new Set(this.found.filter((c) => c.writer === "tool").map((c) => c.step))],
    };
  }

  private check(tool: Span, step: StepSpan): void {
    if (!(tool.start < step.end && step.start < tool.end)) return;
    const hit = (a: ReadonlySet<string>, b: ReadonlySet<string>) => [...a].find((p) => b.has(p));
    const stepWrote = hit(step.writes, tool.reads) ?? hit(step.writes, tool.writes);
    if (stepWrote !== undefined) this.found.push({ tool, step, path: stepWrote, writer: "step" });
    const toolWrote = hit(tool.writes, step.reads);
    if (toolWrote !== undefined) this.found.push({ tool, step, path: toolWrote, writer: "tool" });
  }
}
