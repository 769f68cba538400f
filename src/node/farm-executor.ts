// A farm node's executor: runs an action only with a toolchain this node advertises (argv[0] becomes
// the node's own program with the action's toolchain digest — never whatever path the client sent),
// and hands the outputs to the head's store before the result is reported.
import { basename } from "node:path";
import { type Digest, OrionError, Status, digestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { PeerHint, Toolchain } from "../gen/orion/v1/scheduler.js";
import type { ExecOutcome, ExecRequest } from "../exec/index.js";
import type { ActionExecutor } from "./node.js";
import type { InputChain } from "./input-chain.js";

/** Captured stdout or stderr a node sends inline in its report; longer output travels by digest only (the head caps ReportResult at 8 MiB). */
export const INLINE_OUTPUT_BYTES = 1024 * 1024;

export interface FarmExecutorOptions {
  /** Runs the action; one that can make a context ahead of time (LocalExecutor) warms up what the head names. */
  inner: ActionExecutor & { warmContext?(root: Digest, peers: readonly PeerHint[]): Promise<void> };
  toolchains: readonly Toolchain[];
  /** Where the inner executor leaves outputs. */
  local: BlobStore;
  /** The head's store, which the client and the action cache read. */
  remote: BlobStore;
  /**
   * The chain the inner executor brings its inputs through (the lease's peers reach it in the request): its warm-up
   * queue makes one root at a time. Absent: nothing is warmed up.
   */
  inputs?: InputChain;
}

export class FarmExecutor implements ActionExecutor {
  private readonly byDigest = new Map<string, Toolchain>();

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
    // The inner executor brings the inputs through the chain, the lease's peers (req.peers) first.
    const outcome = await this.o.inner.execute({ ...req, command: { ...req.command, arguments: [mine.path, ...argv.slice(1)] } });
    await this.upload(outcome);
    // Uploaded with the outputs: long captured output travels by digest only, keeping the report within ReportResult's cap.
    for (const k of ["stdoutRaw", "stderrRaw"] as const) if (outcome.result[k].length > INLINE_OUTPUT_BYTES) outcome.result[k] = Buffer.alloc(0);
    return outcome;
  }

  contexts(): string[] {
    const inner = this.o.inner.contexts?.() ?? [];
    const warming = this.o.inputs?.warmingUp() ?? [];
    return warming.length ? [...new Set([...inner, ...warming])] : inner;
  }

  /** Makes a root the head expects compiles in while this node waits, through the input chain's warm-up queue. */
  warm(root: Digest, peers: readonly PeerHint[]): void {
    const inner = this.o.inner;
    if (!inner.warmContext || !this.o.inputs) return;
    this.o.inputs.warm(root, peers, (r, p) => inner.warmContext!(r, p));
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
