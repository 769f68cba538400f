// The input chain's peers stage (input-chain.ts; DESIGN.md, source context): before a node runs an action
// whose inputs it lacks, it asks the peers its lease names — nodes holding the action's input root, or the
// objects a link reads, because they made them — and keeps the head for whatever they cannot give. Every blob
// received is checked against its digest before it is stored; a peer that fails or sends bad bytes is skipped
// for a while.
import type { BlobStore } from "../cas/index.js";
import { CorruptBlobError, type Digest, type Logger, errorMessage } from "../core/index.js";
import type { InputTree } from "../exec/index.js";
import type { PeerHint } from "../gen/orion/v1/scheduler.js";
import { extractTreeTar } from "../merkle/index.js";
import { type Lacking, missingBlobs, worthATarStream } from "./tar-provisioner.js";

/** What a peer offers: single blobs (verified on receipt) and a whole tree as one tar stream. */
export interface PeerSource {
  get(digest: Digest): Promise<Buffer | undefined>;
  readTreeTar(root: Digest): AsyncIterable<Uint8Array>;
}

export interface PeerFetcherOptions {
  /** The node's own store: what it lacks is asked for, and what arrives goes there. */
  local: BlobStore;
  /** A connection to a peer's blob service (made once per address by the caller). */
  connect(address: string): PeerSource;
  logger: Logger;
  /** A peer that failed is left alone this long (default 30 s). */
  backoffMs?: number;
  /** Time spent on peers per input root before the rest is left to the head (default 60 s; each read has its own deadline too). */
  budgetMs?: number;
  now?: () => number;
}

/** What came from peers in this process (for logs and tests). */
export interface PeerFetchStats {
  /** Blobs and bytes received from peers and stored. */
  blobs: number;
  bytes: number;
  /** Whole input roots received as one tar stream from a peer. */
  treeStreams: number;
  /** Peers that could not be reached or failed mid-transfer. */
  failures: number;
  /** Blobs refused because their bytes did not match their digest. */
  refused: number;
}

/** The node's own store failed to take a blob (a full disk): not the peer's fault. */
class LocalStoreFailure extends Error {
  constructor(readonly cause: unknown) {
    super(errorMessage(cause));
  }
}

/** Bytes held in memory per round of single-blob reads from one peer. */
const ROUND_BYTES = 16 * 1024 * 1024;

export class PeerFetcher {
  readonly stats: PeerFetchStats = { blobs: 0, bytes: 0, treeStreams: 0, failures: 0, refused: 0 };
  /** Peer address → when it may be asked again. */
  private readonly resting = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: PeerFetcherOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Brings what the peers named have of `tree`'s blobs into the local store, in their order. Never throws: the head
   * covers the rest. (The input chain calls it once per root at a time: it shares one fetch between callers.)
   */
  fetch(root: Digest, tree: InputTree, peers: readonly PeerHint[], log: Logger = this.o.logger, lacking?: Lacking): Promise<void> {
    return this.fetchRoot(root, tree, peers, log, lacking).catch((err) =>
      log.warn({ root: root.hash, err: errorMessage(err) }, "could not fetch inputs from peers; the head sends them"),
    );
  }

  private async fetchRoot(root: Digest, tree: InputTree, peers: readonly PeerHint[], log: Logger, known?: Lacking): Promise<void> {
    const usable = peers.filter((p) => p.address && (this.resting.get(p.address) ?? 0) <= this.now());
    if (!usable.length) return;
    const { missing: lacking, totalBytes } = known ?? (await missingBlobs(this.o.local, tree));
    let missing = lacking;
    if (!missing.length) return;
    // Peers are a shortcut, not a place to wait: past the budget, whatever is missing comes from the head.
    const deadline = this.now() + (this.o.budgetMs ?? 60_000);
    const overdue = () => this.now() > deadline;
    const before = { blobs: this.stats.blobs, bytes: this.stats.bytes };
    const asked: string[] = [];
    for (const peer of usable) {
      if (!missing.length || overdue()) break;
      asked.push(peer.nodeId || peer.address);
      const source = this.o.connect(peer.address);
      const wholeTree = peer.holdsRoot && worthATarStream(missing, totalBytes);
      try {
        if (wholeTree) {
          const r = await extractTreeTar(source.readTreeTar(root), { files: new Map(tree.files.map((f) => [f.path, f])), store: this.o.local });
          this.stats.treeStreams++;
          this.stats.blobs += r.files;
          this.stats.bytes += r.bytes;
          // A tar stream leaves out files too big for it, and what a peer still materializing lacks: ask for those singly.
          missing = await this.o.local.findMissing(missing);
        }
        await this.readBlobs(source, missing, overdue);
      } catch (err) {
        if (err instanceof LocalStoreFailure) {
          // Our store, not the peer, is in trouble: the head's path will say so too.
          log.warn({ err: errorMessage(err.cause) }, "could not store inputs from a peer; the head sends them");
          break;
        }
        this.stats.failures++;
        // Single reads count their refusals themselves; a tar stream stops at the first bad file.
        if (wholeTree && err instanceof CorruptBlobError) this.stats.refused++;
        this.resting.set(peer.address, this.now() + (this.o.backoffMs ?? 30_000));
        log.warn({ peer: peer.nodeId, address: peer.address, err: errorMessage(err) }, "a peer could not send inputs; asking the next one, then the head");
      }
      missing = await this.o.local.findMissing(missing);
    }
    const got = this.stats.blobs - before.blobs;
    const fields = { root: root.hash, peers: asked, blobs: got, bytes: this.stats.bytes - before.bytes, fromHead: missing.length };
    if (got) log.info(fields, "inputs fetched from peers");
    else log.info(fields, "no inputs from peers; the head sends them");
  }

  /** Reads `missing` from one peer in rounds of bounded size (until `overdue`); blobs it lacks are left for the next source. */
  private async readBlobs(source: PeerSource, missing: readonly Digest[], overdue: () => boolean): Promise<void> {
    for (let i = 0; i < missing.length && !overdue(); ) {
      const round: Digest[] = [];
      let bytes = 0;
      while (i < missing.length && (round.length === 0 || bytes + missing[i]!.sizeBytes <= ROUND_BYTES)) {
        bytes += missing[i]!.sizeBytes;
        round.push(missing[i++]!);
      }
      // Asked together, so the connection batches them into few calls.
      const settled = await Promise.allSettled(
        round.map(async (d) => {
          const data = await source.get(d);
          if (!data) return;
          await this.o.local.put(data, d).catch((err: unknown) => {
            throw new LocalStoreFailure(err);
          });
          this.stats.blobs++;
          this.stats.bytes += data.length;
        }),
      );
      const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected").map((s) => s.reason as unknown);
      const corrupt = failures.filter((e) => e instanceof CorruptBlobError);
      this.stats.refused += corrupt.length;
      if (failures.length) throw failures.find((e) => e instanceof LocalStoreFailure) ?? corrupt[0] ?? failures[0];
    }
  }
}
