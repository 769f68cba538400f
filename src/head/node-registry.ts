// The head's nodes: registration and sessions, heartbeats and eviction, and where work and inputs go — which node
// holds what (placement), which peers to name in a lease, which input roots to warm up. Builds live in head.ts.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { type Clock, type Digest, type Logger, OrionError, Status } from "../core/index.js";
import type { HeartbeatRequest, HeartbeatResponse, LeaveRequest, NodeStatus, PeerHint, RegisterRequest, RegisterResponse, WarmRoot } from "../gen/orion/v1/scheduler.js";
import type { Worker } from "../scheduler/index.js";
import { BlobHolders } from "./blob-holders.js";
import type { ContextIndex } from "./context-index.js";
import { type Payload, toolchainOf } from "./payload.js";
import type { Prepared } from "./prepare.js";

export interface NodeRecord {
  id: string;
  /** The registering process's random id: the same one registering again is a restart, not a second node. */
  instanceId: string;
  /** The secret its Register answer carried: its later calls must show it (its name is public). */
  session: Buffer;
  advertise: string;
  /** How the node isolates actions, as it registered; "" when unsandboxed. */
  sandbox: string;
  slots: number;
  /** Tools running and load average, as its last heartbeat said. */
  running: number;
  load: number;
  /** Names of its toolchains, for status. */
  toolchainNames: string[];
  toolchains: Set<string>;
  /** An embedded node runs whatever toolchain the client found on this machine. */
  anyToolchain: boolean;
  lastSeen: number;
  /** Hashes of the input roots it holds, as its last lease or heartbeat said. */
  contexts: ReadonlySet<string>;
  /** Input roots already named to it to warm up (never twice, so a root it cannot make is not a loop). */
  warmed: Set<string>;
  worker: Worker<Payload>;
  /** Its open Attach call, if any: the node is dropped when that call ends from its side. */
  attachment?: { end(): void };
}

/** A running build's compile root, to warm up on nodes that can run its compiles. */
export interface CompileRoot {
  root: Digest;
  toolchains: ReadonlySet<string>;
}

export interface NodeRegistryOptions {
  clock: Clock;
  logger: Logger;
  heartbeatMs?: number;
  /** A node silent this long is evicted; absent = never. */
  nodeTtlMs?: number;
  /** A node was dropped: its leases go back to the queue. */
  onRemoved(nodeId: string, reason: string): void;
  /** A source context the head knows, by its root or compile-root hash. */
  contextByHash(hash: string): ContextIndex | undefined;
  /** The compile roots of the running builds, once derived. */
  compileRoots(): Iterable<CompileRoot>;
}

/** Peers named in one lease: the best few are enough (each is tried in turn, then the head). */
const MAX_PEER_HINTS = 3;

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Outputs each node reported: it holds them in its store and serves them to peers. */
  private readonly holders = new BlobHolders();
  private sweepTimer?: { cancel(): void };
  /** Toolchain digest → when the last node offering it was dropped: a build may wait a while for it to come back. */
  private readonly lostToolchains = new Map<string, number>();
  private closed = false;

  constructor(private readonly o: NodeRegistryOptions) {
    this.armSweep();
  }

  get size(): number {
    return this.nodes.size;
  }

  /** Still the registered node under its name (not evicted, not replaced by a restart). */
  isCurrent(node: NodeRecord): boolean {
    return this.nodes.get(node.id) === node;
  }

  register(req: RegisterRequest): RegisterResponse {
    const asked = req.name || "node";
    const previous = this.nodes.get(asked);
    // The same process (or its restart, which keeps its instance id in its data dir) comes back: it
    // takes its name back, and whatever its old incarnation held goes back to the queue.
    if (previous && req.instanceId && previous.instanceId === req.instanceId) this.remove(asked, `node ${asked} re-registered`);
    let id = asked;
    for (let n = 2; this.nodes.has(id); n++) id = `${asked}-${n}`;
    const toolchains = new Set(req.toolchains.map((t) => t.digest));
    const anyToolchain = req.toolchains.some((t) => t.digest === "*");
    const record: NodeRecord = {
      id,
      instanceId: req.instanceId,
      session: randomBytes(24),
      advertise: req.advertise,
      sandbox: req.sandbox ?? "",
      running: 0,
      load: 0,
      toolchainNames: req.toolchains.map((t) => t.name),
      slots: req.slots,
      toolchains,
      anyToolchain,
      lastSeen: this.o.clock.now(),
      contexts: new Set(),
      warmed: new Set(),
      worker: {
        name: id,
        accepts: (t) => {
          const p = t.payload;
          if (!p || "host" in p) return false;
          return anyToolchain || toolchains.has(toolchainOf(p.prepared));
        },
        heldBytes: (key) => this.heldBytes(record, key),
      },
    };
    this.nodes.set(id, record);
    this.o.logger.info({ node: id, slots: req.slots, toolchains: record.toolchainNames, sandbox: record.sandbox || "none" }, "node registered");
    // The embedded node (toolchain "*") is the user's own machine; a farm node running others' actions unconfined is worth a line.
    if (!record.sandbox && !anyToolchain) this.o.logger.warn({ node: id }, "node runs actions unsandboxed (orion node --unsandboxed)");
    return { nodeId: id, heartbeatMs: this.o.heartbeatMs ?? 5000, session: record.session.toString("hex") };
  }

  /**
   * The registered node a call speaks for: unknown → NOT_FOUND (it registers again); a session that is not the
   * one this registration was given → PERMISSION_DENIED (another caller using its name, or its own stale incarnation).
   */
  caller(nodeId: string, session: string): NodeRecord {
    const node = this.nodes.get(nodeId);
    if (!node) throw new OrionError(`unknown node ${nodeId}`, { code: Status.NOT_FOUND });
    const given = Buffer.from(/^[0-9a-f]*$/.test(session) ? session : "", "hex");
    if (given.length !== node.session.length || !timingSafeEqual(given, node.session)) {
      throw new OrionError(`node ${nodeId}: not this node's session (a caller other than the node registered under this name)`, { code: Status.PERMISSION_DENIED });
    }
    return node;
  }

  heartbeat(req: HeartbeatRequest): HeartbeatResponse {
    const node = this.caller(req.nodeId, req.session);
    node.lastSeen = this.o.clock.now();
    node.running = req.running;
    node.load = req.load;
    this.noteContexts(node, req.contextHashes);
    return { cancelLeaseIds: [] };
  }

  /** See NodeAttachments.attached: a newer call of the same registration supersedes an older one, which is ended. */
  attached(nodeId: string, session: string, end: () => void): () => void {
    const node = this.caller(nodeId, session);
    const mine = { end };
    const older = node.attachment;
    node.attachment = mine;
    older?.end();
    node.lastSeen = this.o.clock.now();
    return () => {
      if (node.attachment !== mine) return; // superseded, or ended by the head
      node.attachment = undefined;
      if (this.closed || !this.isCurrent(node)) return;
      this.o.logger.warn({ node: node.id }, "node dropped its connection");
      this.remove(node.id, `node ${node.id} dropped its connection`);
    };
  }

  leave(req: LeaveRequest): void {
    if (!this.nodes.has(req.nodeId)) return;
    this.caller(req.nodeId, req.session);
    this.o.logger.info({ node: req.nodeId }, "node left");
    this.remove(req.nodeId, `node ${req.nodeId} stopped`);
  }

  /** Drops a node; the head puts its leases back in the queue. */
  remove(nodeId: string, reason: string): void {
    const node = this.nodes.get(nodeId);
    if (!node) return;
    this.nodes.delete(nodeId);
    const now = this.o.clock.now();
    for (const t of node.toolchains) if (!this.placeable(t)) this.lostToolchains.set(t, now);
    if (this.lostToolchains.size > 256) this.lostToolchains.delete(this.lostToolchains.keys().next().value!);
    // Its Attach call ends too, so a node that is still alive learns at once that it must register again.
    this.endAttachment(node);
    // Its name may come back on another machine, or with an emptied store: what it held is no longer known.
    this.holders.forget(nodeId);
    this.o.onRemoved(nodeId, reason);
  }

  noteContexts(node: NodeRecord, hashes: readonly string[] | undefined): void {
    if (!hashes || (hashes.length === 0 && node.contexts.size === 0)) return;
    node.contexts = new Set(hashes);
  }

  /** A node reported outputs: it serves them to peers from now on. */
  noteOutputs(nodeId: string, digests: Digest[]): void {
    this.holders.add(nodeId, digests);
  }

  /** Input roots a running build will compile against that this node neither holds nor was told about. */
  rootsToWarm(node: NodeRecord): Digest[] {
    const out: Digest[] = [];
    for (const { root: r, toolchains } of this.o.compileRoots()) {
      if (node.contexts.has(r.hash) || node.warmed.has(r.hash) || out.some((o) => o.hash === r.hash)) continue;
      if (!node.anyToolchain && ![...toolchains].some((t) => node.toolchains.has(t))) continue;
      out.push(r);
    }
    return out;
  }

  /** Names the roots to warm up to the node (never twice), with the peers that hold each whole. */
  warmUp(node: NodeRecord, roots: Digest[]): WarmRoot[] {
    if (node.warmed.size > 1024) node.warmed.clear(); // builds move on; an old root named again costs one look
    for (const r of roots) node.warmed.add(r.hash);
    return roots.map((root) => ({ root, peers: this.peersFor(node, { inputRoot: root }) }));
  }

  /**
   * How many of an input root's bytes a node holds: all of them when it has materialized that root;
   * else, when the head knows the root as a source context, the bytes of its distinct blobs that also
   * appear in a context the node holds (the blobs are in its store); else none.
   */
  private heldBytes(node: NodeRecord, rootHash: string): number {
    if (node.contexts.has(rootHash)) return Number.MAX_SAFE_INTEGER;
    if (node.contexts.size === 0) return 0;
    const ctx = this.o.contextByHash(rootHash);
    if (!ctx) return 0;
    let best = 0;
    for (const h of node.contexts) {
      const other = this.o.contextByHash(h);
      if (other) best = Math.max(best, ctx.bytesSharedWith(other));
    }
    return best;
  }

  /**
   * The other nodes worth asking for an action's inputs before the head, most bytes first: for a compile,
   * those holding its source context whole (one that only shares bytes with it holds what the asker is
   * likely to hold too, not the files that changed); for an archive or link, those that made its objects.
   * Only nodes that serve blobs.
   */
  peersFor(self: NodeRecord, p: Pick<Prepared, "inputRoot" | "inputBlobs">): PeerHint[] {
    const root = p.inputRoot.hash;
    if (self.contexts.has(root)) return [];
    // Archives and links: who made their objects, in one pass over the inputs (not one per node).
    const made = p.inputBlobs?.length ? this.holders.bytesByNode(p.inputBlobs) : undefined;
    const now = this.o.clock.now();
    const quiet = (this.o.nodeTtlMs ?? Infinity) / 2;
    const scored: { n: NodeRecord; bytes: number; whole: boolean }[] = [];
    for (const n of this.nodes.values()) {
      // A node gone quiet may be on its way out: not worth a round trip.
      if (n === self || !n.advertise || now - n.lastSeen > quiet) continue;
      const whole = n.contexts.has(root);
      const bytes = whole ? Number.MAX_SAFE_INTEGER : (made?.get(n.id) ?? 0);
      if (bytes > 0) scored.push({ n, bytes, whole });
    }
    scored.sort((a, b) => b.bytes - a.bytes);
    return scored.slice(0, MAX_PEER_HINTS).map(({ n, whole }) => ({ nodeId: n.id, address: n.advertise, holdsRoot: whole }));
  }

  /** Some node could run an action of this toolchain. */
  placeable(toolchain: string): boolean {
    for (const n of this.nodes.values()) if (n.anyToolchain || n.toolchains.has(toolchain)) return true;
    return false;
  }

  /** A node offering this toolchain was dropped less than `ms` ago (none offers it now). */
  offeredWithin(toolchain: string, ms: number): boolean {
    const lost = this.lostToolchains.get(toolchain);
    return lost !== undefined && this.o.clock.now() - lost < ms;
  }

  /** Why no registered node takes a build's queued actions, naming the nodes there are. */
  whyNone(): string {
    return this.nodes.size ? `none of the registered nodes has their toolchain: ${this.nodeList()}` : "no node is registered with the head";
  }

  /** "id [toolchains], ..." of every registered node, for messages. */
  private nodeList(): string {
    return [...this.nodes.values()].map((n) => `${n.id} [${n.toolchainNames.join(" ")}]`).join(", ");
  }

  /** Why an action of this toolchain has nowhere to go, naming the nodes and what they offer. */
  unplaceable(tool: string, toolchain: string): string {
    return this.nodes.size
      ? `no node has the toolchain for ${tool} (${toolchain.slice(0, 16)}); nodes: ${this.nodeList()}`
      : `no node is registered with the head to run ${tool}`;
  }

  status(now: number): NodeStatus[] {
    const ttl = this.o.nodeTtlMs ?? Infinity;
    return [...this.nodes.values()].map((n) => ({
      name: n.id,
      address: n.advertise,
      slots: n.slots,
      running: n.running,
      toolchains: n.toolchainNames,
      lastSeenMsAgo: now - n.lastSeen,
      state: now - n.lastSeen > ttl / 2 ? "silent" : "alive",
      load: n.load,
      sandbox: n.sandbox,
    }));
  }

  /** Stops evicting, and ends the nodes' Attach calls (a closing server would wait for them). */
  close(): void {
    this.closed = true;
    this.sweepTimer?.cancel();
    for (const n of this.nodes.values()) this.endAttachment(n);
  }

  private endAttachment(node: NodeRecord): void {
    const a = node.attachment;
    node.attachment = undefined;
    a?.end();
  }

  /** Evicts nodes silent past their TTL, every half TTL. */
  private armSweep(): void {
    const ttl = this.o.nodeTtlMs;
    if (!ttl || this.closed) return;
    this.sweepTimer = this.o.clock.setTimeout(() => {
      const now = this.o.clock.now();
      for (const n of [...this.nodes.values()]) {
        if (now - n.lastSeen > ttl) {
          this.o.logger.warn({ node: n.id, silentMs: now - n.lastSeen }, "node evicted");
          this.remove(n.id, `node ${n.id} silent for ${now - n.lastSeen} ms`);
        }
      }
      this.armSweep();
    }, Math.max(10, Math.floor(ttl / 2)));
  }
}
