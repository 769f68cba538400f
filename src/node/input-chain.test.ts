// The input chain over the real wire: peers are read-only Blobs servers (startPeerBlobServer) and the head a Blobs
// server (blobService), all on 127.0.0.1:0 over their own SQLite stores. Its stages alone — the peers a lease names
// (PeerFetcher: asked in order, bad bytes refused and the peer rested) and the head's tar stream (TarProvisioner) —
// then the chain: local store, peers, tar stream, head blob by blob, in that order, the tree loaded once.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { TamperingBlobStore } from "../cas/tampering-blob-store.js";
import { type Digest, Status, silentLogger } from "../core/index.js";
import { type InputTree, materializeTree } from "../exec/index.js";
import { BlobsService } from "../gen/orion/v1/blobs.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { blobService } from "../grpc/blob-service.js";
import { connectFarm, startPeerBlobServer, tokenAuthenticator } from "../grpc/index.js";
import { CHUNK_BYTES } from "../grpc/limits.js";
import { isMissingInputs } from "../head/lost-inputs.js";
import { buildTree, MISSING_FROM_STORE, TAR_MAX_FILE_BYTES, type TreeEntry } from "../merkle/index.js";
import { InputChain } from "./input-chain.js";
import { PeerFetcher, type PeerSource } from "./peer-fetch.js";
import { TarProvisioner } from "./tar-provisioner.js";

let dir: string;
let serverStore: BlobStore;
let local: BlobStore;
const cleanups: (() => unknown)[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-input-chain-"));
  serverStore = createBlobStore({ dir: join(dir, "head-cas") });
  local = createBlobStore({ dir: join(dir, "node-cas") });
  cleanups.push(() => serverStore.close(), () => local.close());
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  fs.rmSync(dir, { recursive: true, force: true });
});

let stores = 0;
function peerStore(): BlobStore {
  const s = createBlobStore({ dir: join(dir, `peer-cas-${++stores}`) });
  cleanups.push(() => s.close());
  return s;
}

/** A read-only peer server over `store` (what `orion node` runs), and its address. */
async function servePeer(store: BlobStore): Promise<string> {
  const server = await startPeerBlobServer({ store, listen: "127.0.0.1:0", tmpDir: join(dir, "tmp"), logger: silentLogger });
  cleanups.push(() => server.close());
  return server.address;
}

/** Twelve files (one bigger than a chunk) put into every store given; the tree as a node flattens it. */
async function makeTree(into: BlobStore[], seed = 0, huge = false): Promise<{ root: Digest; tree: InputTree }> {
  const files = new Map<string, TreeEntry>();
  const put = async (data: Buffer) => {
    let d: Digest | undefined;
    for (const s of into) d = await s.put(data);
    return d!;
  };
  for (let i = 0; i < 11; i++) files.set(`obj/f${i}.o`, { digest: await put(Buffer.from(`object ${seed}.${i} ${"y".repeat(300 + i)}`)), executable: false });
  files.set("obj/big.o", { digest: await put(Buffer.alloc(CHUNK_BYTES + 999, 3 + seed)), executable: false });
  // Too big for a tar stream: it travels as its own blob stream.
  if (huge) files.set("obj/huge.o", { digest: await put(Buffer.alloc(TAR_MAX_FILE_BYTES + 1, 5)), executable: false });
  const t = buildTree(files);
  for (const m of t.directories.values()) for (const s of into) await s.put(Directory.encode(m).finish());
  return { root: t.root, tree: { dirs: ["obj"], files: [...files].map(([path, f]) => ({ path, ...f })), symlinks: [] } };
}

/** Connections to peers, one per address, closed after the test. */
function peerConnections(readTimeoutMs?: number): (address: string) => PeerSource {
  const conns = new Map<string, ReturnType<typeof connectFarm>>();
  return (address) => {
    let c = conns.get(address);
    if (!c) {
      c = connectFarm(address, { readTimeoutMs });
      conns.set(address, c);
      cleanups.push(() => c!.close());
    }
    return c.blobs;
  };
}

function fetcher(now = () => 0, readTimeoutMs?: number): PeerFetcher {
  return new PeerFetcher({ local, connect: peerConnections(readTimeoutMs), logger: silentLogger, now });
}

const missingFrom = async (tree: InputTree) => (await local.findMissing(tree.files.map((f) => f.digest))).length;

describe("PeerFetcher (the peers stage) against real peer blob servers", () => {
  it("takes a whole root from a peer holding it as one tar stream, and single blobs from one that made them", async () => {
    const holder = peerStore();
    const { root, tree } = await makeTree([holder]);
    const f = fetcher();
    await f.fetch(root, tree, [{ nodeId: "a", address: await servePeer(holder), holdsRoot: true }]);
    expect(f.stats).toMatchObject({ treeStreams: 1, blobs: 12, failures: 0, refused: 0 });
    expect(await missingFrom(tree)).toBe(0);

    // The same blobs from a peer that only made some of them: no tar stream, single reads, the rest left to the head.
    fs.rmSync(join(dir, "node-cas"), { recursive: true, force: true });
    local.close();
    local = createBlobStore({ dir: join(dir, "node-cas") });
    const maker = peerStore();
    for (const file of tree.files.slice(0, 5)) await maker.put((await holder.get(file.digest))!);
    const g = fetcher();
    await g.fetch(root, tree, [{ nodeId: "b", address: await servePeer(maker), holdsRoot: false }]);
    expect(g.stats).toMatchObject({ treeStreams: 0, blobs: 5, failures: 0 });
    expect(await missingFrom(tree)).toBe(7);
  });

  it("refuses a peer's corrupt bytes (nothing bad is stored), rests that peer, and takes the blobs from the next", async () => {
    const good = peerStore();
    const { root, tree } = await makeTree([good]);
    const other = await makeTree([good], 1);
    const bad = await servePeer(new TamperingBlobStore(good));
    let clock = 0;
    const f = fetcher(() => clock);
    await f.fetch(root, tree, [
      { nodeId: "bad", address: bad, holdsRoot: false },
      { nodeId: "good", address: await servePeer(good), holdsRoot: false },
    ]);
    expect(f.stats.refused).toBeGreaterThan(0);
    expect(f.stats.failures).toBe(1);
    expect(await missingFrom(tree)).toBe(0);
    for (const file of tree.files) expect((await local.get(file.digest))!.equals((await good.get(file.digest))!)).toBe(true);

    // Another root: the bad peer is resting, so nothing is asked of it (no new refusals) until its time is up.
    const refused = f.stats.refused;
    await f.fetch(other.root, other.tree, [{ nodeId: "bad", address: bad, holdsRoot: false }]);
    expect(f.stats.refused).toBe(refused);
    expect(await missingFrom(other.tree)).toBe(12);
    clock += 60_000;
    await f.fetch(other.root, other.tree, [{ nodeId: "bad", address: bad, holdsRoot: false }]);
    expect(f.stats.refused).toBeGreaterThan(refused);
    expect(await missingFrom(other.tree)).toBe(12);
  });

  it("leaves everything to the head when a peer cannot be reached, without throwing", async () => {
    const { root, tree } = await makeTree([peerStore()]);
    const f = fetcher();
    await f.fetch(root, tree, [{ nodeId: "gone", address: "127.0.0.1:1", holdsRoot: true }]);
    expect(f.stats).toMatchObject({ blobs: 0, failures: 1 });
    expect(await missingFrom(tree)).toBe(12);
  });

  it("after a tar stream, reads singly from the same peer what the stream leaves out (a file too big for it)", async () => {
    const holder = peerStore();
    const { root, tree } = await makeTree([holder], 2, true);
    const f = fetcher();
    await f.fetch(root, tree, [{ nodeId: "a", address: await servePeer(holder), holdsRoot: true }]);
    expect(f.stats).toMatchObject({ treeStreams: 1, blobs: 13, failures: 0 });
    expect(await missingFrom(tree)).toBe(0);
  });

  it("gives up on a peer that accepts the connection but never answers, within its read deadline", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s)); // takes the TCP connection, says nothing
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const address = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const { root, tree } = await makeTree([peerStore()]);
    for (const holdsRoot of [false, true]) {
      const f = fetcher(() => 0, 300);
      const started = Date.now();
      await f.fetch(root, tree, [{ nodeId: "mute", address, holdsRoot }]);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(f.stats).toMatchObject({ blobs: 0, failures: 1 });
    }
  });

  it("serves reads only: a peer refuses uploads with PERMISSION_DENIED", async () => {
    const store = peerStore();
    const conn = connectFarm(await servePeer(store));
    cleanups.push(() => conn.close());
    await expect(conn.blobs.put(Buffer.from("small"))).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    await expect(conn.blobs.put(Buffer.alloc(CHUNK_BYTES * 2, 1))).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    expect(store.sizeBytes()).toBe(0);
  });
});

async function serve(store: BlobStore): Promise<string> {
  const server = new grpc.Server();
  server.addService(BlobsService, blobService({ store, auth: tokenAuthenticator(undefined), tmpDir: dir, logger: silentLogger }));
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanups.push(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

/** Twenty source files and one blob bigger than a chunk, in the head's store; the tree as a node flattens it. */
async function headTree(): Promise<{ root: Digest; tree: InputTree }> {
  const files = new Map<string, TreeEntry>();
  for (let i = 0; i < 20; i++) files.set(`src/f${i}.c`, { digest: await serverStore.put(Buffer.from(`int f${i}(void) { return ${i}; } /* ${"x".repeat(200)} */\n`)), executable: false });
  const big = Buffer.alloc(CHUNK_BYTES * 2 + 777, 7);
  files.set("data/big.bin", { digest: await serverStore.put(big), executable: false });
  const t = buildTree(files);
  for (const m of t.directories.values()) await serverStore.put(Directory.encode(m).finish());
  return { root: t.root, tree: { dirs: ["data", "src"], files: [...files].map(([path, f]) => ({ path, ...f })), symlinks: [] } };
}

describe("TarProvisioner (the head tar stream stage) over a real Blobs server", () => {
  it("brings a context the node lacks as one tar stream, and skips one it mostly holds", async () => {
    const { root, tree } = await headTree();
    const conn = connectFarm(await serve(serverStore));
    cleanups.push(() => conn.close());
    const p = new TarProvisioner({ local, source: conn.blobs });
    await p.provision(root, tree, silentLogger);
    expect(p.stats).toMatchObject({ streams: 1, files: 21, failures: 0 });
    expect(await local.findMissing(tree.files.map((f) => f.digest))).toEqual([]);
    // Everything is here now: no second stream.
    await p.provision(root, tree, silentLogger);
    expect(p.stats.streams).toBe(1);
  });

  it("refuses a tampering head's bytes: nothing corrupt is stored, and the failure is the provisioner's to absorb", async () => {
    const { root, tree } = await headTree();
    // The sixth file in the stream arrives corrupt.
    const bad = tree.files.find((f) => f.path === "src/f12.c")!;
    const conn = connectFarm(await serve(new TamperingBlobStore(serverStore, (d) => d.hash === bad.digest.hash)));
    cleanups.push(() => conn.close());
    const p = new TarProvisioner({ local, source: conn.blobs });
    await p.provision(root, tree, silentLogger);
    expect(p.stats).toMatchObject({ streams: 0, failures: 1 });
    expect(await local.has(bad.digest)).toBe(false);
    const kept = (await Promise.all(tree.files.map(async (f) => ((await local.has(f.digest)) ? f.path : "")))).filter(Boolean).sort();
    // Paths in stream order: data/big.bin, src/f0.c, src/f1.c, src/f10.c, src/f11.c, then src/f12.c. Those
    // before it are kept (verified); a few after it may be too (puts overlap the stream), never f12.c itself.
    expect(kept).toEqual(expect.arrayContaining(["data/big.bin", "src/f0.c", "src/f1.c", "src/f10.c", "src/f11.c"]));
    expect(kept).not.toContain("src/f12.c");
  });
});

/** The head as a node reaches it: its store behind a real Blobs server (blob reads and ReadTree tar streams). */
async function connectHead(): Promise<ReturnType<typeof connectFarm>["blobs"]> {
  const conn = connectFarm(await serve(serverStore));
  cleanups.push(() => conn.close());
  return conn.blobs;
}

/** Links `tree` into a fresh folder from the chain's store, as LocalExecutor does after bringing it. */
async function materialize(chain: InputChain, tree: InputTree): Promise<void> {
  await materializeTree(chain.store, tree, fs.mkdtempSync(join(dir, "ctx-")), { readOnly: false });
}

describe("InputChain: local store, peers, head tar stream, head blob by blob", () => {
  it("asks no one for a root the local store holds whole", async () => {
    const { root } = await makeTree([local, serverStore]);
    const peer = peerStore();
    const chain = new InputChain({ local, head: await connectHead(), peer: peerConnections() });
    const tree = await chain.bring(root, [{ nodeId: "p", address: await servePeer(peer), holdsRoot: true }], silentLogger);
    await materialize(chain, tree);
    expect(tree.files).toHaveLength(12);
    expect(chain.stats()).toMatchObject({ peers: { blobs: 0, treeStreams: 0, failures: 0 }, head: { blobs: 0 }, headTar: { streams: 0 } });
  });

  it("takes what the lease's peer has first, then the rest from the head one by one (too few left for a tar stream)", async () => {
    const { root, tree: made } = await makeTree([serverStore]);
    // 5 of its 12 files on a peer that made them.
    const maker = peerStore();
    for (const file of made.files.slice(0, 5)) await maker.put((await serverStore.get(file.digest))!);
    const chain = new InputChain({ local, head: await connectHead(), peer: peerConnections() });
    const tree = await chain.bring(root, [{ nodeId: "maker", address: await servePeer(maker), holdsRoot: false }], silentLogger);
    // The tree's two Directory blobs came from the head (the node had none), its files not yet.
    expect(chain.stats()).toMatchObject({ peers: { blobs: 5, treeStreams: 0 }, head: { blobs: 2 }, headTar: { streams: 0 } });
    expect(await missingFrom(tree)).toBe(7);
    // The last stage: materialization reads the other 7 through to the head.
    await materialize(chain, tree);
    expect(chain.stats().head).toMatchObject({ blobs: 2 + 7 });
    expect(await missingFrom(tree)).toBe(0);
  });

  it("takes a root it holds none of as one tar stream from the head when no peer can send it, before any single read", async () => {
    const { root } = await headTree();
    const chain = new InputChain({ local, head: await connectHead(), peer: peerConnections() });
    const tree = await chain.bring(root, [{ nodeId: "gone", address: "127.0.0.1:1", holdsRoot: true }], silentLogger);
    // Its three Directory blobs were read singly to load the tree; its 21 files came in the stream, none singly.
    expect(chain.stats()).toMatchObject({ peers: { blobs: 0, failures: 1 }, head: { blobs: 3 }, headTar: { streams: 1, files: 21 } });
    await materialize(chain, tree);
    expect(chain.stats().head).toMatchObject({ blobs: 3 });
  });

  it("shares one fetch between concurrent actions on one root, and loads its tree once", async () => {
    const holder = peerStore();
    const { root } = await makeTree([holder, serverStore]);
    let directoryReads = 0;
    const head = await connectHead();
    const counting = Object.assign(Object.create(head) as typeof head, {
      get: (d: Digest) => {
        directoryReads++;
        return head.get(d);
      },
    });
    const chain = new InputChain({ local, head: counting, peer: peerConnections() });
    const peers = [{ nodeId: "a", address: await servePeer(holder), holdsRoot: true }];
    const [a, b] = await Promise.all([chain.bring(root, peers, silentLogger), chain.bring(root, peers, silentLogger)]);
    expect(a).toBe(b);
    expect(chain.stats().peers).toMatchObject({ treeStreams: 1, blobs: 12 });
    // The root and obj/: each read once, from the head (the node had neither).
    expect(directoryReads).toBe(2);
    // A tree the caller loaded already is handed on, not loaded again.
    expect(await chain.bring(root, [], silentLogger, a)).toBe(a);
    expect(directoryReads).toBe(2);
  });

  it("is the local store alone without a head or peers (the embedded node), and says a missing tree is missing from the store", async () => {
    const { root } = await makeTree([local]);
    const chain = new InputChain({ local });
    expect(chain.store).toBe(local);
    expect((await chain.bring(root, [{ nodeId: "x", address: "127.0.0.1:1", holdsRoot: true }], silentLogger)).files).toHaveLength(12);
    expect(chain.stats()).toEqual({ peers: undefined, head: undefined, headTar: undefined });
    const gone = buildTree([["a.c", { digest: await local.put(Buffer.from("int a;")), executable: false }]]).root;
    const err = (await chain.bring(gone, [], silentLogger).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: number; message: string };
    expect(err).toMatchObject({ code: Status.NOT_FOUND, message: expect.stringContaining(MISSING_FROM_STORE) });
    // The head reads that text in the node's report as lost inputs.
    expect(isMissingInputs(err.message)).toBe(true);
  });
});
