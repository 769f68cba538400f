// A node's one input chain: brings an action's input root onto the node in a fixed order — the node's own store,
// then the peers the lease names, then the head as one tar stream (when the node holds almost none of the tree),
// then the head blob by blob as materialization links each file — loading the tree once and handing it on.
import { type BlobStore, readThrough } from "../cas/index.js";
import { type Digest, type Logger, silentLogger } from "../core/index.js";
import { type InputSource, type InputTree, loadInputTree } from "../exec/index.js";
import type { PeerHint } from "../gen/orion/v1/scheduler.js";
import type { DirectoryCache } from "../merkle/index.js";
import { PeerFetcher, type PeerFetcherOptions, type PeerFetchStats, type PeerSource } from "./peer-fetch.js";
import { missingBlobs, TarProvisioner, type TarProvisionStats, type TreeTarSource } from "./tar-provisioner.js";

export interface InputChainOptions {
  /** The node's own store: asked first, and where everything that arrives goes. */
  local: BlobStore;
  /** The head's store, whose Blobs service also sends a whole tree as one tar stream. Absent: the local store alone (the embedded node). */
  head?: BlobStore & TreeTarSource;
  /** A connection to a peer's blob service by address (made once per address by the caller). Absent: no peer is asked. */
  peer?(address: string): PeerSource;
  logger?: Logger;
  /** Peers' back-off, time budget and clock (PeerFetcher's defaults). */
  peerTiming?: Pick<PeerFetcherOptions, "backoffMs" | "budgetMs" | "now">;
  /** The tar stage's thresholds (TarProvisioner's defaults: 90 % of the bytes and 8 blobs missing). */
  tarThresholds?: { minMissingShare?: number; minMissingBlobs?: number };
}

/** Where this process's inputs came from, as the node logs it when it stops ("inputs received"). */
export interface InputChainStats {
  peers?: PeerFetchStats;
  /** Blobs and bytes read from the head one by one. */
  head?: { blobs: number; bytes: number };
  headTar?: TarProvisionStats;
}

export class InputChain implements InputSource {
  /** What materialization reads: the local store, falling back blob by blob to the head's (the chain's last stage). */
  readonly store: BlobStore;
  private readonly peers?: PeerFetcher;
  private readonly tar?: TarProvisioner;
  /** Directory messages of earlier roots: a context per host step re-reads only the directories that changed. */
  private readonly directories: DirectoryCache = new Map();
  /** Roots being brought, by hash: concurrent actions (and a warm-up) on one root share one fetch. */
  private readonly inFlight = new Map<string, Promise<InputTree>>();
  /** Roots being warmed up, or next to be (told to the head as held). */
  private readonly warming = new Set<string>();
  private nextWarm?: { root: Digest; peers: readonly PeerHint[]; make: WarmUp };
  private warmLoop?: Promise<void>;
  private readonly fetched?: { blobs: number; bytes: number };

  constructor(private readonly o: InputChainOptions) {
    const logger = o.logger ?? silentLogger;
    if (o.head) {
      const store = readThrough(o.local, o.head);
      this.fetched = store.fetched;
      this.store = store;
      this.tar = new TarProvisioner({ local: o.local, source: o.head, ...o.tarThresholds });
    } else {
      this.store = o.local;
    }
    if (o.peer) this.peers = new PeerFetcher({ local: o.local, connect: o.peer, logger, ...o.peerTiming });
  }

  /** The root's tree alone: its Directory blobs from the local store, else the head's. */
  load(root: Digest): Promise<InputTree> {
    return loadInputTree(this.store, root, { cache: this.directories });
  }

  /** Brings `root` onto the node in the chain's order and resolves with its tree; never fails for a source that could not help. */
  bring(root: Digest, peers: readonly PeerHint[], log: Logger, tree?: InputTree): Promise<InputTree> {
    let p = this.inFlight.get(root.hash);
    if (!p) {
      p = this.bringOnce(root, peers, log, tree).finally(() => this.inFlight.delete(root.hash));
      this.inFlight.set(root.hash, p);
    }
    return p;
  }

  /**
   * Warms a root up while the node waits (`make` materializes its context, bringing it through this chain). One at a
   * time, the latest first: a build's context moves on with each host step, and a root superseded while waiting is
   * dropped (its compiles, if any, bring it when they come).
   */
  warm(root: Digest, peers: readonly PeerHint[], make: WarmUp): void {
    if (this.nextWarm) this.warming.delete(this.nextWarm.root.hash);
    this.nextWarm = { root, peers, make };
    this.warming.add(root.hash);
    this.warmLoop ??= this.drainWarm().finally(() => (this.warmLoop = undefined));
  }

  /** Roots waiting for or in their warm-up: the node tells the head it holds them, so they are not named again. */
  warmingUp(): string[] {
    return [...this.warming];
  }

  stats(): InputChainStats {
    return { peers: this.peers?.stats, head: this.fetched, headTar: this.tar?.stats };
  }

  private async bringOnce(root: Digest, peers: readonly PeerHint[], log: Logger, known?: InputTree): Promise<InputTree> {
    const tree = known ?? (await this.load(root));
    // 1. The node's own store: a root it holds whole needs nothing from anyone.
    if (!this.o.head && !this.peers) return tree;
    const lacking = await missingBlobs(this.o.local, tree);
    if (!lacking.missing.length) return tree;
    // 2. The peers the lease names (nodes holding the root, or the objects a link reads), given what the node lacks.
    const askPeers = !!this.peers && peers.length > 0;
    if (askPeers) await this.peers!.fetch(root, tree, peers, log, lacking);
    // 3. The head, the whole tree as one tar stream, when the node still lacks almost all of it (asked again only when
    // peers may have sent some of it).
    await this.tar?.provision(root, tree, log, askPeers ? undefined : lacking);
    // 4. The head, blob by blob: `store` reads through to it as materialization links each file.
    return tree;
  }

  private async drainWarm(): Promise<void> {
    for (let w = this.nextWarm; w; w = this.nextWarm) {
      this.nextWarm = undefined;
      try {
        await w.make(w.root, w.peers);
      } finally {
        this.warming.delete(w.root.hash);
      }
    }
  }
}

/** Materializes a root's context ahead of its first compile (LocalExecutor.warmContext); handles its own failures. */
export type WarmUp = (root: Digest, peers: readonly PeerHint[]) => Promise<void>;
