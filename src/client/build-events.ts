// Follows a submitted build's events on the client: each finished action's outputs queued for writing in event order,
// the compiler's own words shown, an infrastructure failure said once per cause, blobs the head lost sent again, and
// the summary passed on once every failure's diagnostics are out.
import { posix } from "node:path";
import { DiskFullError, freeBytesAt, isDiskFull, OrionError, ExitCode, type Logger } from "../core/index.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type { ActionEvent, Summary, SummaryEvent } from "../scheduler/index.js";
import type { ClientBuildOptions } from "./build-options.js";
import type { BuildRun } from "./build-run.js";
import type { OutputWriter } from "./outputs.js";
import { reuploadBlobs } from "./reupload.js";

/** Resolves with the summary once it and every failed action's diagnostics were passed on; rejects when the watch fails. */
export function followEvents(o: ClientBuildOptions, run: BuildRun, writer: OutputWriter, byId: ReadonlyMap<string, GraphAction>, log: Logger): Promise<Summary> {
  return new EventFollower(o, run, writer, byId, log).follow();
}

class EventFollower {
  /** Infrastructure failures said so far, by their words. */
  private readonly infraReported = new Set<string>();
  /** The diagnostics of failed actions being fetched and printed: the summary waits for them. */
  private readonly diagnosed: Promise<unknown>[] = [];

  constructor(
    private readonly o: ClientBuildOptions,
    private readonly run: BuildRun,
    private readonly writer: OutputWriter,
    private readonly byId: ReadonlyMap<string, GraphAction>,
    private readonly log: Logger,
  ) {}

  follow(): Promise<Summary> {
    return new Promise<Summary>((resolve, reject) => {
      const detach = this.o.head.watchBuild(
        this.run.buildId,
        0,
        (event) => {
          if (event.type === "summary") {
            this.onSummary(event, resolve);
            queueMicrotask(() => detach());
            return;
          }
          if (event.type === "missing-blobs") {
            // The head's store lost these (rot): send them again; the action waiting for them then re-runs.
            void reuploadBlobs(this.o.store, this.o.graph.root, this.run.tree, event.digests, this.log, this.writer);
            return;
          }
          if (event.type === "action") this.onAction(event);
          this.o.onEvent(event);
        },
        (err) => {
          this.writer.close(err);
          this.run.hostAbort.abort();
          reject(err);
        },
      );
    });
  }

  private onAction(event: ActionEvent): void {
    const o = this.o;
    // Embedded, every store is this client's own: its full disk ends the build (on a farm, another node may have room).
    const full = o.inProcess && (event.state === "failed" || event.state === "retry") && isDiskFull(event.error ?? "");
    if (full) this.run.onDiskFull(event.error);
    if (event.state === "failed" && event.infra && !full) this.reportInfraFailure(event);
    if (event.state === "finished" || event.state === "cached" || event.state === "failed") this.onActionDone(event);
  }

  /** One line per distinct cause: a toolchain no node has fails every compile the same way. */
  private reportInfraFailure(event: ActionEvent): void {
    this.run.infraFailure = true;
    const why = event.error ?? "infrastructure failure";
    if (!this.infraReported.has(why)) this.o.diagnostics(`orion: ${event.label}: ${why}\n`);
    this.infraReported.add(why);
  }

  private onActionDone(event: ActionEvent): void {
    const a = this.byId.get(event.id)!;
    const result = this.o.head.getResult(this.run.buildId, event.id);
    // Registered now, in event order, so a dependent's files always wait for its dependencies'.
    if (event.state !== "failed") this.writer.write(a.id, a.deps, a.cwd, result);
    const shown = result.then((r) => (r ? this.showResult(r, event.state === "failed") : undefined));
    // A failure's diagnostics come before the summary (a farm's results arrive after their events).
    if (event.state === "failed") this.diagnosed.push(shown.catch(() => undefined));
    else void shown.catch(() => undefined);
  }

  /** The compiler's own words (warnings, errors), as make would have shown them; long output comes by digest only. */
  private async showResult(r: ActionResult, failed: boolean): Promise<void> {
    const o = this.o;
    for (const [raw, digest] of [[r.stdoutRaw, r.stdoutDigest], [r.stderrRaw, r.stderrDigest]] as const) {
      const text = raw.length || !digest?.sizeBytes ? raw : await o.store.get(digest).catch(() => undefined);
      if (text?.length) o.diagnostics(text);
    }
    // Embedded, a tool that could not write its output into its sandbox (under the client cache) on a full
    // disk is that disk's failure, not the project's: exit 3 and the folder, not exit 1.
    if (o.inProcess && o.cacheDir && failed && toolSawFullDisk(r, o.cacheDir)) {
      const work = posix.join(o.cacheDir, "work");
      this.run.onDiskFull(new DiskFullError("the sandboxes", work, undefined, freeBytesAt(work)));
    }
  }

  private onSummary(event: SummaryEvent, resolve: (s: Summary) => void): void {
    this.run.summary = event;
    // Every action's event came before this one: nothing a host step waits for can still be queued.
    this.writer.close(new OrionError("the build ended before every action a host step depends on was reported", { exitCode: ExitCode.INFRASTRUCTURE }));
    void Promise.all(this.diagnosed).then(() => {
      this.o.onEvent(event);
      resolve(event);
    });
  }
}

/** The tool's own words say it found no space, and the client cache's file system has little left (a sandbox's files are gone by now). */
function toolSawFullDisk(r: ActionResult, cacheDir: string): boolean {
  const words = /No space left on device|Disk quota exceeded/;
  if (!words.test(r.stderrRaw.toString()) && !words.test(r.stdoutRaw.toString())) return false;
  return (freeBytesAt(cacheDir) ?? Infinity) < 16 * 1024 * 1024;
}
