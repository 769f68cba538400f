// The blob wire, end to end over a real grpc-js server on 127.0.0.1:0: batching, chunked streams, and
// verification on both sides (a corrupt upload is refused and never stored; a corrupt download is refused).
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CorruptBlobError, ExitCode, OrionError, Status, digestOf, silentLogger } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { TamperingBlobStore } from "../cas/tampering-blob-store.js";
import { BlobsClient, BlobsService, type BatchUpdateBlobsResponse, type WriteBlobResponse } from "../gen/orion/v1/blobs.js";
import { tokenAuthenticator } from "./auth.js";
import { blobService } from "./blob-service.js";
import { connectFarm, type FarmConnection } from "./connection.js";
import { CHUNK_BYTES, STREAM_THRESHOLD } from "./limits.js";

const TOKEN = "t0ken";
let dir: string;
let server: grpc.Server;
let address: string;
let serverStore: BlobStore;
const cleanups: (() => void)[] = [];

async function serve(store: BlobStore): Promise<void> {
  server = new grpc.Server();
  server.addService(BlobsService, blobService({ store, auth: tokenAuthenticator(TOKEN), tmpDir: dir, logger: silentLogger }));
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  address = `127.0.0.1:${port}`;
  cleanups.push(() => server.forceShutdown());
}

function connect(token = TOKEN): FarmConnection {
  const c = connectFarm(address, { token });
  cleanups.push(() => c.close());
  return c;
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

beforeEach(async () => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-grpc-blobs-"));
  serverStore = createBlobStore({ dir: join(dir, "server-cas") });
  cleanups.push(() => serverStore.close());
});

afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("GrpcBlobStore against a real Blobs server", () => {
  it("round-trips many small blobs in batches and large ones as chunked streams", async () => {
    await serve(serverStore);
    const { blobs } = connect();
    const small = Array.from({ length: 200 }, (_, i) => bytes(100 + i, i));
    const large = bytes(STREAM_THRESHOLD * 3 + 12345, 9); // several chunks, the last one partial
    const all = [...small, large].map((b) => digestOf(b));
    expect(await blobs.findMissing(all)).toHaveLength(all.length);
    await Promise.all([...small, large].map((b) => blobs.put(b)));
    expect(await blobs.findMissing(all)).toEqual([]);
    expect(await serverStore.has(digestOf(large))).toBe(true);
    const back = await Promise.all(all.map((d) => blobs.get(d)));
    back.forEach((b, i) => expect(b!.equals([...small, large][i]!)).toBe(true));
    expect(await blobs.get(digestOf("never stored"))).toBeUndefined();

    // A large file streams from disk; copyOut writes an independent file with the asked-for mode.
    const file = join(dir, "big.bin");
    const big = bytes(CHUNK_BYTES * 2 + 7, 3);
    fs.writeFileSync(file, big);
    const d = await blobs.putFile(file);
    expect(d).toEqual(digestOf(big));
    const out = join(dir, "out.bin");
    expect(await blobs.copyOut(d, out, true)).toBe(true);
    expect(fs.readFileSync(out).equals(big)).toBe(true);
    expect(fs.statSync(out).mode & 0o777).toBe(0o755);
  });

  it("refuses an upload whose bytes do not match its digest and stores nothing, batched or streamed", async () => {
    await serve(serverStore);
    const raw = new BlobsClient(address, grpc.credentials.createInsecure());
    cleanups.push(() => raw.close());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);

    const claimed = digestOf("the real bytes");
    const res = await new Promise<BatchUpdateBlobsResponse>((resolve, reject) =>
      raw.batchUpdateBlobs({ requests: [{ digest: claimed, data: Buffer.from("forged bytes!!") }] }, md, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(res.responses[0]!.status!.code).toBe(Status.DATA_LOSS);
    expect(await serverStore.has(claimed)).toBe(false);

    const big = bytes(STREAM_THRESHOLD + 100, 1);
    const bigDigest = digestOf(big);
    const forged = Buffer.from(big);
    forged[5] = forged[5]! ^ 1;
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = raw.writeBlob(md, (e: grpc.ServiceError | null, _r?: WriteBlobResponse) => resolve(e));
      call.write({ digest: bigDigest, offset: 0, data: forged.subarray(0, CHUNK_BYTES), finishWrite: false });
      call.write({ digest: undefined, offset: CHUNK_BYTES, data: forged.subarray(CHUNK_BYTES), finishWrite: true });
      call.end();
    });
    expect(err?.code).toBe(Status.DATA_LOSS);
    expect(err?.details).toMatch(/refused|hash|match/i);
    expect(await serverStore.has(bigDigest)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("upload-"))).toEqual([]);

    // The client checks too: it never sends bytes under another blob's name.
    const { blobs } = connect();
    await expect(blobs.put(Buffer.from("x"), digestOf("y"))).rejects.toBeInstanceOf(CorruptBlobError);
  });

  it("refuses a download whose bytes do not match, and a read-through store keeps none of it", async () => {
    const small = Buffer.from("a header the node needs\n");
    const large = bytes(STREAM_THRESHOLD * 2, 4);
    await serverStore.put(small);
    await serverStore.put(large);
    await serve(new TamperingBlobStore(serverStore));
    const { blobs } = connect();
    await expect(blobs.get(digestOf(small))).rejects.toThrow(/hash to .*refused/);
    await expect(blobs.get(digestOf(large))).rejects.toBeInstanceOf(CorruptBlobError);

    const nodeStore = createBlobStore({ dir: join(dir, "node-cas"), readThrough: blobs });
    cleanups.push(() => nodeStore.close());
    await expect(nodeStore.materialize(digestOf(small), join(dir, "h.h"), false)).rejects.toBeInstanceOf(CorruptBlobError);
    expect(fs.existsSync(join(dir, "h.h"))).toBe(false);
    const local = createBlobStore({ dir: join(dir, "node-cas") });
    cleanups.push(() => local.close());
    expect(await local.has(digestOf(small))).toBe(false);
  });

  it("fetches a node's missing inputs through the read-through store once, then serves them locally", async () => {
    const header = Buffer.from("#define X 1\n");
    await serverStore.put(header);
    await serve(serverStore);
    const { blobs } = connect();
    const nodeStore = createBlobStore({ dir: join(dir, "node-cas"), readThrough: blobs });
    cleanups.push(() => nodeStore.close());
    const [a, b] = await Promise.all([nodeStore.get(digestOf(header)), nodeStore.get(digestOf(header))]);
    expect(a!.equals(header) && b!.equals(header)).toBe(true);
    server.forceShutdown(); // the head is gone: the local copy still serves
    expect(await nodeStore.materialize(digestOf(header), join(dir, "x.h"), false)).toBe(true);
    expect(fs.readFileSync(join(dir, "x.h"), "utf8")).toBe("#define X 1\n");
  });

  it("remembers, for a short-lived client, what the head holds: a re-upload asks about new blobs only", async () => {
    await serve(serverStore);
    const c = connectFarm(address, { token: TOKEN, shortLived: true });
    cleanups.push(() => c.close());
    const a = Buffer.from("uploaded once");
    const b = Buffer.from("already on the head");
    await serverStore.put(b);
    await c.blobs.put(a);
    expect(await c.blobs.findMissing([digestOf(a), digestOf(b)])).toEqual([]);
    server.forceShutdown(); // nothing left to ask: both answers come from the memo
    expect(await c.blobs.findMissing([digestOf(a), digestOf(b)])).toEqual([]);
    await expect(c.blobs.findMissing([digestOf("new")])).rejects.toThrow(/cannot reach the head/);
  });

  it("refuses a wrong or missing token with UNAUTHENTICATED, an infrastructure error naming the cause", async () => {
    await serve(serverStore);
    const wrong = connect("guess");
    const err = await wrong.blobs.findMissing([digestOf("a")]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrionError);
    expect((err as OrionError).code).toBe(Status.UNAUTHENTICATED);
    expect((err as OrionError).exitCode).toBe(ExitCode.INFRASTRUCTURE);
    expect((err as OrionError).message).toMatch(/refused FindMissingBlobs: wrong token/);
    const none = connectFarm(address);
    cleanups.push(() => none.close());
    await expect(none.blobs.get(digestOf("b"))).rejects.toThrow(/requires a token/);
  });
});
