// The CLI's reporter, the only writer of stdout: NDJSON events (--json), a ninja-style status line on a TTY, or plain lines.
import type { BuildEvent, Summary } from "../scheduler/index.js";

export type ReporterMode = "json" | "tty" | "plain";

export interface Output {
  write(chunk: string): unknown;
  /** The terminal's width, for the status line. */
  columns?: number;
}

export class Reporter {
  private done = 0;
  private total = 0;
  private statusShown = false;

  constructor(
    private readonly mode: ReporterMode,
    private readonly out: Output,
  ) {}

  onEvent(e: BuildEvent): void {
    if (this.mode === "json") {
      this.out.write(JSON.stringify(e) + "\n");
      return;
    }
    switch (e.type) {
      case "build-start":
        this.total = e.actions;
        break;
      case "action":
        if (e.state === "finished" || e.state === "cached" || e.state === "failed") this.done++;
        if (e.state === "started") this.line(`[${this.progress()}] ${e.label}`, true);
        else if (e.state === "failed") this.line(`FAILED: ${e.label}${e.error ? ` (${e.error})` : ""}`, false);
        else if (e.state === "retry") this.line(`RETRY: ${e.label} on another attempt (${e.error ?? "infrastructure error"})`, false);
        else if (this.mode === "tty" && (e.state === "cached" || e.state === "finished")) this.line(`[${this.progress()}] ${e.label}`, true);
        break;
      case "host-step":
        if (e.state === "started") this.line(`[host] ${e.cmd.split("\n")[0]!.slice(0, 100)}`, true);
        else if (e.state === "failed") this.line(`FAILED: ${e.cmd.split("\n")[0]}`, false);
        break;
      case "summary":
        this.clearStatus();
        this.out.write(formatSummary(e) + "\n");
        break;
    }
  }

  /** done/total; a make-driven build's total is a prediction, and more actions than predicted show as done/?. */
  private progress(): string {
    return this.done < this.total ? `${this.done}/${this.total}` : `${this.done}/?`;
  }

  /** Diagnostics arrive on stderr between status updates; clear the status line first so they start on a clean line. */
  beforeDiagnostics(): void {
    this.clearStatus();
  }

  private line(text: string, status: boolean): void {
    if (this.mode === "tty" && status) {
      const width = (this.out.columns || 100) - 1;
      this.out.write(`\r\x1b[K${text.length > width ? text.slice(0, width) : text}`);
      this.statusShown = true;
      return;
    }
    this.clearStatus();
    this.out.write(text + "\n");
  }

  private clearStatus(): void {
    if (this.statusShown) {
      this.out.write("\r\x1b[K");
      this.statusShown = false;
    }
  }
}

function formatSummary(s: Summary): string {
  const secs = (s.wallMs / 1000).toFixed(2);
  const nodes = Object.entries(s.nodes)
    .map(([n, c]) => `${n}: ${c}`)
    .join(", ");
  return (
    `orion: ${s.actions} actions: ${s.executed} executed, ${s.cacheHits} cached, ${s.failed} failed, ${s.skipped} skipped; ` +
    `${s.hostSteps} host steps${s.hostStepsCached ? ` (${s.hostStepsCached} restored)` : ""}; ${secs} s${nodes ? ` (${nodes})` : ""}` +
    (s.replayed ? "; restored whole from the last build of this tree" : "")
  );
}
