// First provisioning over the real wire: a Blobs server on 127.0.0.1:0 sends a tree as one tar stream
// (ReadTree), the node's provisioner extracts it into its own store; a tampering server's bytes are refused.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { TamperingBlobStore } from "../cas/tampering-blob-store.js";
import { type Digest, silentLogger } from "../core/index.js";
import type { InputTree } from "../exec/index.js";
import { BlobsService } from "../gen/orion/v1/blobs.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { blobService } from "../grpc/blob-service.js";
import { connectFarm, tokenAuthenticator } from "../grpc/index.js";
import { CHUNK_BYTES } from "../grpc/limits.js";
import { buildTree, type TreeEntry } from "../merkle/index.js";
import { TarProvisioner } from "./tar-provisioner.js";

let dir: string;
let serverStore: BlobStore;
let local: BlobStore;
const cleanups: (() => void)[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-tar-provision-"));
  serverStore = createBlobStore({ dir: join(dir, "head-cas") });
  local = createBlobStore({ dir: join(dir, "node-cas") });
  cleanups.push(() => serverStore.close(), () => local.close());
});

afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
  fs.rmSync(dir, { recursive: true, force: true });
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

describe("TarProvisioner over a real Blobs server", () => {
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
