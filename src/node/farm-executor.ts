// A farm node's executor: runs an action only with a toolchain this node advertises (argv[0] becomes
// the node's own program with the action's toolchain digest — never whatever path the client sent),
// and hands the outputs to the head's store before the result is reported.
import { basename } from "node:path";
import { type Digest, OrionError, Status, digestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { PeerHint, Toolchain } from "../gen/orion/v1/scheduler.js";
import type { ExecOutcome, ExecRequest } from "../exec/index.js";
import type { ActionExecutor } from "./node.js";
import type { PeerFetcher } from "./peer-fetch.js";

/** Captured stdout or stderr a node sends inline in its report; longer output travels by digest only (the head caps ReportResult at 8 MiB). */
export const INLINE_OUTPUT_BYTES = 1024 * 1024;

export interface FarmExecutorOptions {
  /** Runs the action; one that can make a context ahead of time (LocalExecutor) warms up what the head names. */
  inner: ActionExecutor & { warmContext?(root: Digest): Promise<void> };
  toolchains: readonly Toolchain[];
  /** Where the inner executor leaves outputs. */
  local: BlobStore;
  /** The head's store, which the client and the action cache read. */
  remote: BlobStore;
  /** Fetches inputs from the peers a lease names before the head is asked (absent: the head sends everything). */
  peers?: PeerFetcher;
}

export class FarmExecutor implements ActionExecutor {
  private readonly byDigest = new Map<string, Toolchain>();
  /** Roots being warmed up, or next to be (told to the head as held). */
  private readonly warming = new Set<string>();
  private nextWarm?: { root: Digest; peers: readonly PeerHint[] };
  private warmLoop?: Promise<void>;

  constructor(private readonly o: FarmExecutorOptions) {
    for (const t of o.toolchains) if (!this.byDigest.has(t.digest)) this.byDigest.set(t.digest, t);
  }

  async execute(req: ExecRequest): Promise<ExecOutcome> {
    const digest = req.command.platform?.properties.find((p) => p.name === "toolchain")?.value ?? "";
    const argv = req.command.arguments;
    // The digest names the driver as called (gcc, cc, g++ differ), so the match carries the right name too.
    const mine = this.byDigest.get(digest);
    if (!mine || argv.length === 0) {
      throw new OrionError(`this node has no toolchain ${digest.slice(0, 16)} for ${basename(argv[0] ?? "")}`, { code: Status.FAILED_PRECONDITION });
    }
    // A context this node already holds (or is materializing) needs nothing from anyone.
    const fetchStart = new Date();
    if (this.o.peers && !(this.o.inner.contexts?.() ?? []).includes(req.inputRoot.hash)) {
      // Peers named in the lease, or a warm-up's fetch of this root still on its way: either way, not the head twice.
      if (req.peers?.length) await this.o.peers.fetch(req.inputRoot, req.peers);
      else await this.o.peers.pending(req.inputRoot);
    }
    const outcome = await this.o.inner.execute({ ...req, command: { ...req.command, arguments: [mine.path, ...argv.slice(1)] } });
    // What came from peers is part of the action's input fetch.
    const meta = outcome.result.executionMetadata;
    if (meta?.inputFetchStartTimestamp && meta.inputFetchStartTimestamp > fetchStart) {
      outcome.phases.inputFetchMs += meta.inputFetchStartTimestamp.getTime() - fetchStart.getTime();
      meta.inputFetchStartTimestamp = fetchStart;
    }
    await this.upload(outcome);
    // Uploaded with the outputs: long captured output travels by digest only, keeping the report within ReportResult's cap.
    for (const k of ["stdoutRaw", "stderrRaw"] as const) if (outcome.result[k].length > INLINE_OUTPUT_BYTES) outcome.result[k] = Buffer.alloc(0);
    return outcome;
  }

  contexts(): string[] {
    const inner = this.o.inner.contexts?.() ?? [];
    return this.warming.size ? [...new Set([...inner, ...this.warming])] : inner;
  }

  /**
   * Makes a root the head expects compiles in while this node waits: its bytes from the peers named, the rest from
   * the head. One at a time, the latest first: a build's context moves on with each host step, and a root that was
   * superseded while waiting is dropped (its compiles, if any, fetch it when they come).
   */
  warm(root: Digest, peers: readonly PeerHint[]): void {
    if (!this.o.inner.warmContext) return;
    if (this.nextWarm) this.warming.delete(this.nextWarm.root.hash);
    this.nextWarm = { root, peers };
    this.warming.add(root.hash);
    this.warmLoop ??= this.drainWarm().finally(() => (this.warmLoop = undefined));
  }

  private async drainWarm(): Promise<void> {
    for (let w = this.nextWarm; w; w = this.nextWarm) {
      this.nextWarm = undefined;
      try {
        if (this.o.peers && w.peers.length) await this.o.peers.fetch(w.root, w.peers);
        await this.o.inner.warmContext!(w.root);
      } finally {
        this.warming.delete(w.root.hash);
      }
    }
  }

  private async upload(outcome: ExecOutcome): Promise<void> {
    const r = outcome.result;
    const wanted = new Map<string, Digest>();
    for (const d of [...r.outputFiles.map((f) => f.digest), r.stdoutDigest, r.stderrDigest]) if (d && d.sizeBytes > 0) wanted.set(digestKey(d), d);
    if (!wanted.size) return;
    const missing = await this.o.remote.findMissing([...wanted.values()]);
    await Promise.all(
      missing.map(async (d) => {
        const data = await this.o.local.get(d);
        if (!data) throw new OrionError(`output blob ${digestKey(d)} vanished from the node's store`, { code: Status.DATA_LOSS });
        await this.o.remote.put(data, d);
      }),
    );
  }
}
