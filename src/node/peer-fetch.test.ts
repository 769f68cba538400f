// Peer-to-peer inputs over the real wire: peers are read-only Blobs servers (startPeerBlobServer) on
// 127.0.0.1:0 over their own stores; the fetcher asks them in the order its lease named them. A peer
// sending bad bytes is refused (nothing corrupt stored) and skipped; what no peer has is left for the head.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { TamperingBlobStore } from "../cas/tampering-blob-store.js";
import { type Digest, Status, silentLogger } from "../core/index.js";
import type { InputTree } from "../exec/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { connectFarm, startPeerBlobServer } from "../grpc/index.js";
import { CHUNK_BYTES } from "../grpc/limits.js";
import { buildTree, TAR_MAX_FILE_BYTES, type TreeEntry } from "../merkle/index.js";
import { PeerFetcher } from "./peer-fetch.js";

let dir: string;
let local: BlobStore;
const cleanups: (() => unknown)[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-peer-fetch-"));
  local = createBlobStore({ dir: join(dir, "node-cas") });
  cleanups.push(() => local.close());
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

function fetcher(trees: InputTree | Map<string, InputTree>, now = () => 0, readTimeoutMs?: number): PeerFetcher {
  const conns = new Map<string, ReturnType<typeof connectFarm>>();
  return new PeerFetcher({
    local,
    tree: async (root) => (trees instanceof Map ? trees.get(root.hash)! : trees),
    connect: (address) => {
      let c = conns.get(address);
      if (!c) {
        c = connectFarm(address, { readTimeoutMs });
        conns.set(address, c);
        cleanups.push(() => c!.close());
      }
      return c.blobs;
    },
    logger: silentLogger,
    now,
  });
}

const missingFrom = async (tree: InputTree) => (await local.findMissing(tree.files.map((f) => f.digest))).length;

describe("PeerFetcher against real peer blob servers", () => {
  it("takes a whole root from a peer holding it as one tar stream, and single blobs from one that made them", async () => {
    const holder = peerStore();
    const { root, tree } = await makeTree([holder]);
    const f = fetcher(tree);
    await f.fetch(root, [{ nodeId: "a", address: await servePeer(holder), holdsRoot: true }]);
    expect(f.stats).toMatchObject({ treeStreams: 1, blobs: 12, failures: 0, refused: 0 });
    expect(await missingFrom(tree)).toBe(0);

    // The same blobs from a peer that only made some of them: no tar stream, single reads, the rest left to the head.
    fs.rmSync(join(dir, "node-cas"), { recursive: true, force: true });
    local.close();
    local = createBlobStore({ dir: join(dir, "node-cas") });
    const maker = peerStore();
    for (const file of tree.files.slice(0, 5)) await maker.put((await holder.get(file.digest))!);
    const g = fetcher(tree);
    await g.fetch(root, [{ nodeId: "b", address: await servePeer(maker), holdsRoot: false }]);
    expect(g.stats).toMatchObject({ treeStreams: 0, blobs: 5, failures: 0 });
    expect(await missingFrom(tree)).toBe(7);
  });

  it("refuses a peer's corrupt bytes (nothing bad is stored), rests that peer, and takes the blobs from the next", async () => {
    const good = peerStore();
    const { root, tree } = await makeTree([good]);
    const other = await makeTree([good], 1);
    const bad = await servePeer(new TamperingBlobStore(good));
    let clock = 0;
    const f = fetcher(new Map([[root.hash, tree], [other.root.hash, other.tree]]), () => clock);
    await f.fetch(root, [
      { nodeId: "bad", address: bad, holdsRoot: false },
      { nodeId: "good", address: await servePeer(good), holdsRoot: false },
    ]);
    expect(f.stats.refused).toBeGreaterThan(0);
    expect(f.stats.failures).toBe(1);
    expect(await missingFrom(tree)).toBe(0);
    for (const file of tree.files) expect((await local.get(file.digest))!.equals((await good.get(file.digest))!)).toBe(true);

    // Another root: the bad peer is resting, so nothing is asked of it (no new refusals) until its time is up.
    const refused = f.stats.refused;
    await f.fetch(other.root, [{ nodeId: "bad", address: bad, holdsRoot: false }]);
    expect(f.stats.refused).toBe(refused);
    expect(await missingFrom(other.tree)).toBe(12);
    clock += 60_000;
    await f.fetch(other.root, [{ nodeId: "bad", address: bad, holdsRoot: false }]);
    expect(f.stats.refused).toBeGreaterThan(refused);
    expect(await missingFrom(other.tree)).toBe(12);
  });

  it("leaves everything to the head when a peer cannot be reached, without throwing", async () => {
    const { root, tree } = await makeTree([peerStore()]);
    const f = fetcher(tree);
    await f.fetch(root, [{ nodeId: "gone", address: "127.0.0.1:1", holdsRoot: true }]);
    expect(f.stats).toMatchObject({ blobs: 0, failures: 1 });
    expect(await missingFrom(tree)).toBe(12);
  });

  it("after a tar stream, reads singly from the same peer what the stream leaves out (a file too big for it)", async () => {
    const holder = peerStore();
    const { root, tree } = await makeTree([holder], 2, true);
    const f = fetcher(tree);
    await f.fetch(root, [{ nodeId: "a", address: await servePeer(holder), holdsRoot: true }]);
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
      const f = fetcher(tree, () => 0, 300);
      const started = Date.now();
      await f.fetch(root, [{ nodeId: "mute", address, holdsRoot }]);
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
