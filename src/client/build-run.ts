// The state one submitted client build shares between its event watch and its host-step loop — the tree as last
// hashed, how it is ending (interrupt, full disk, failures) — and the exit code that state adds up to.
import { diskFullLine, ExitCode } from "../core/index.js";
import type { HashedTree } from "../merkle/index.js";
import type { Summary } from "../scheduler/index.js";
import type { ClientBuildOptions } from "./build-options.js";

export class BuildRun {
  /** The tree as last hashed: what host steps are judged against and lost blobs are re-sent from. */
  tree: HashedTree;
  /** How many actions' outputs the writer had queued when `tree` was hashed. */
  treeAtWrites = 0;
  /** The summary, once it came: every action was reported and the host-step loop ends. */
  summary: Summary | undefined;
  /** The watch failed: the host-step loop ends too. */
  watchFailed = false;
  /** The user interrupted the build: exit 130. */
  interrupted = false;
  /** The one line said about a full disk, once one was hit: the build ends at once with exit 3. */
  diskFull: string | undefined;
  /** A host step failed or could not run: exit 1. */
  hostFailure = false;
  /** Actions the infrastructure failed (no node for the toolchain, retries exhausted): exit 3, not 1. */
  infraFailure = false;
  /** Stops the host steps: on an interrupt, a full disk, a failed watch. */
  readonly hostAbort = new AbortController();

  constructor(
    private readonly o: Pick<ClientBuildOptions, "head" | "diagnostics" | "inProcess" | "cacheDir" | "graph">,
    readonly buildId: string,
    tree: HashedTree,
  ) {
    this.tree = tree;
  }

  /** Ctrl-C: host steps stop and the head cancels the build (its summary follows). */
  interrupt(): void {
    this.interrupted = true;
    this.hostAbort.abort();
    void this.o.head.cancelBuild(this.buildId);
  }

  /** A disk filled up: said once, and the build ends now (its summary follows) rather than retry into the same full disk. */
  onDiskFull(err: unknown): void {
    if (this.diskFull) return;
    const o = this.o;
    // Embedded, what failed without naming its store wrote under the client cache (the node's sandboxes live there too).
    this.diskFull = diskFullLine(err, o.inProcess ? "the client cache" : "a write", o.inProcess && o.cacheDir ? o.cacheDir : o.graph.root);
    o.diagnostics(`orion: ${this.diskFull}\n`);
    this.hostAbort.abort();
    // Not from inside the event being handled: the embedded head would deliver the summary before that event.
    if (!this.summary) setImmediate(() => void o.head.cancelBuild(this.buildId).catch(() => undefined));
  }

  exitCode(final: Summary): number {
    return this.interrupted
      ? ExitCode.INTERRUPTED
      : this.infraFailure || this.diskFull
        ? ExitCode.INFRASTRUCTURE
        : final.failed > 0 || final.skipped > 0 || this.hostFailure
          ? ExitCode.BUILD_FAILED
          : ExitCode.OK;
  }
}
