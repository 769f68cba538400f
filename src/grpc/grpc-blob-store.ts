// A BlobStore on a remote Blobs service: small blobs coalesced into batches, large ones as chunked
// streams, and every blob received checked against its digest — a mismatch is refused, never returned.
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CorruptBlobError, type Digest, EMPTY_DIGEST, OrionError, Status, digestKey, digestOf, digestOfFile, sameDigest } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { BatchReadBlobsResponse, BatchUpdateBlobsResponse, BlobsClient, FindMissingBlobsResponse } from "../gen/orion/v1/blobs.js";
import { rpc } from "./call.js";
import { fromServiceError } from "./errors.js";
import { BATCH_BYTES, CHUNK_BYTES, FIND_MISSING_BATCH, STREAM_THRESHOLD } from "./limits.js";

export interface GrpcBlobStoreOptions {
  client: BlobsClient;
  /** The peer's address, for messages. */
  address: string;
  /** Remember which blobs the remote holds for this store's lifetime (a build's client; not a long-lived daemon). */
  rememberPresent?: boolean;
  /**
   * A deadline for each read (a batch, a blob stream; a tree's tar stream gets three times as long): a peer
   * that stops answering is given up on, and the caller turns elsewhere. Absent: no deadline but the tree's.
   */
  readTimeoutMs?: number;
}

/** A whole tree's tar stream may take a while on a slow link, but not forever. */
const TREE_DEADLINE_MS = 10 * 60_000;

interface PendingPut {
  digest: Digest;
  data: Uint8Array;
  resolve(): void;
  reject(err: unknown): void;
}

interface PendingGet {
  digest: Digest;
  resolve(data: Buffer | undefined): void;
  reject(err: unknown): void;
}

/** Refuses bytes that are not the blob asked for. */
function verifyReceived(expected: Digest, data: Uint8Array, from: string): void {
  const got = digestOf(data);
  if (!sameDigest(got, expected)) {
    throw new CorruptBlobError(`blob ${digestKey(expected)} from ${from}: the bytes received hash to ${digestKey(got)}; refused`);
  }
}

export class GrpcBlobStore implements BlobStore {
  private readonly client: BlobsClient;
  private readonly address: string;
  /**
   * Blobs this connection saw the remote hold (stored by us, or not reported missing): asked about once per
   * connection, so re-uploading a tree after a host step costs only its new files. A CAS evicts by age, and a
   * build's blobs are its newest, so the memo holds for a connection's (one build's) lifetime — daemons go without.
   */
  private readonly present = new Set<string>();
  private readonly remember: boolean;
  private readonly readTimeoutMs?: number;
  private puts: PendingPut[] = [];
  private gets: PendingGet[] = [];
  private flushScheduled = false;

  constructor(o: GrpcBlobStoreOptions) {
    this.client = o.client;
    this.address = o.address;
    this.remember = o.rememberPresent ?? false;
    this.readTimeoutMs = o.readTimeoutMs;
  }

  /** Call options carrying the read deadline, when there is one. */
  private readOptions(factor = 1): grpc.CallOptions {
    return this.readTimeoutMs ? { deadline: Date.now() + factor * this.readTimeoutMs } : {};
  }

  async findMissing(digests: readonly Digest[]): Promise<Digest[]> {
    const out: Digest[] = [];
    const unknown = digests.filter((d) => d.sizeBytes > 0 && !this.present.has(digestKey(d)));
    for (let i = 0; i < unknown.length; i += FIND_MISSING_BATCH) {
      const blobDigests = unknown.slice(i, i + FIND_MISSING_BATCH);
      const res = await rpc<FindMissingBlobsResponse>((cb) => this.client.findMissingBlobs({ blobDigests }, cb), this.address, "FindMissingBlobs");
      const missing = new Set(res.missingBlobDigests.map(digestKey));
      if (this.remember) for (const d of blobDigests) if (!missing.has(digestKey(d))) this.present.add(digestKey(d));
      out.push(...res.missingBlobDigests);
    }
    return out;
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.findMissing([digest])).length === 0;
  }

  async put(data: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = digestOf(data);
    if (expected && !sameDigest(digest, expected)) {
      throw new CorruptBlobError(`bytes hash to ${digestKey(digest)}, not the expected ${digestKey(expected)}`);
    }
    if (digest.sizeBytes === 0) return digest;
    if (data.length > STREAM_THRESHOLD) {
      await this.writeStream(digest, async function* () {
        for (let at = 0; at < data.length; at += CHUNK_BYTES) yield Buffer.from(data.buffer, data.byteOffset + at, Math.min(CHUNK_BYTES, data.length - at));
      });
      return digest;
    }
    await new Promise<void>((resolve, reject) => {
      this.puts.push({ digest, data, resolve, reject });
      this.scheduleFlush();
    });
    return digest;
  }

  async putFile(path: string, expected?: Digest): Promise<Digest> {
    const st = await fsp.stat(path);
    if (st.size <= STREAM_THRESHOLD) return this.put(await fsp.readFile(path), expected);
    // The first chunk names the blob: hash first (or trust `expected`; the server verifies either way).
    const digest = expected ?? (await digestOfFile(path));
    await this.writeStream(digest, async function* () {
      for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) yield chunk as Buffer;
    });
    return digest;
  }

  async adoptFile(path: string): Promise<Digest> {
    const d = await this.putFile(path);
    await fsp.rm(path, { force: true });
    return d;
  }

  async get(digest: Digest): Promise<Buffer | undefined> {
    if (digest.sizeBytes === 0 && digest.hash === EMPTY_DIGEST.hash) return Buffer.alloc(0);
    if (digest.sizeBytes > STREAM_THRESHOLD) return this.readStream(digest);
    return new Promise((resolve, reject) => {
      this.gets.push({ digest, resolve, reject });
      this.scheduleFlush();
    });
  }

  async copyOut(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    return this.writeOut(digest, dest, executable ? 0o755 : 0o644);
  }

  async materialize(digest: Digest, dest: string, executable: boolean): Promise<boolean> {
    return this.writeOut(digest, dest, executable ? 0o555 : 0o444);
  }

  /**
   * The tree under `root` as one tar stream (the head's ReadTree), chunk by chunk; leaving the loop
   * early cancels the call. The bytes are not checked here: the extractor checks each file against its digest.
   */
  async *readTreeTar(root: Digest): AsyncGenerator<Buffer> {
    const call = this.client.readTree({ rootDigest: root }, { deadline: Date.now() + (this.readTimeoutMs ? 3 * this.readTimeoutMs : TREE_DEADLINE_MS) });
    let ended = false;
    try {
      for await (const chunk of call as AsyncIterable<{ data: Buffer }>) yield chunk.data;
      ended = true;
    } catch (err) {
      ended = true;
      throw typeof (err as grpc.ServiceError).code === "number" ? fromServiceError(err as grpc.ServiceError, this.address, "ReadTree") : err;
    } finally {
      if (!ended) call.cancel();
    }
  }

  /** Unknown: the remote store's size is the remote's business. */
  sizeBytes(): number {
    return 0;
  }

  /** The channel belongs to the connection that made this store. */
  close(): void {}

  private async writeOut(digest: Digest, dest: string, mode: number): Promise<boolean> {
    const data = await this.get(digest);
    if (!data) return false;
    await writeInPlace(dest, data, mode);
    return true;
  }

  /** Calls made in one turn of the event loop travel together. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const puts = this.puts;
      const gets = this.gets;
      this.puts = [];
      this.gets = [];
      // Each entry also costs its framing: ten thousand tiny blobs must not make one batch of many MiB (the server caps batches).
      for (const batch of batches(puts, (p) => p.data.length + BATCH_ENTRY_BYTES)) void this.flushPuts(batch);
      for (const batch of batches(gets, (g) => g.digest.sizeBytes + BATCH_ENTRY_BYTES)) void this.flushGets(batch);
    });
  }

  private async flushPuts(batch: PendingPut[]): Promise<void> {
    try {
      const requests = batch.map((p) => ({ digest: p.digest, data: p.data as Buffer }));
      const res = await rpc<BatchUpdateBlobsResponse>((cb) => this.client.batchUpdateBlobs({ requests }, cb), this.address, "BatchUpdateBlobs");
      const status = new Map(res.responses.map((r) => [r.digest ? digestKey(r.digest) : "", r.status]));
      for (const p of batch) {
        const s = status.get(digestKey(p.digest));
        if (s && s.code === Status.OK) {
          if (this.remember) this.present.add(digestKey(p.digest));
          p.resolve();
        }
        else if (s?.code === Status.DATA_LOSS) p.reject(new CorruptBlobError(`${this.address} refused blob ${digestKey(p.digest)}: ${s.message}`));
        else p.reject(new OrionError(`${this.address} did not store blob ${digestKey(p.digest)}: ${s?.message ?? "no answer for it"}`, { code: s?.code ?? Status.INTERNAL }));
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  private async flushGets(batch: PendingGet[]): Promise<void> {
    try {
      const digests = batch.map((g) => g.digest);
      const res = await rpc<BatchReadBlobsResponse>((cb) => this.client.batchReadBlobs({ digests }, new grpc.Metadata(), this.readOptions(), cb), this.address, "BatchReadBlobs");
      const byKey = new Map(res.responses.map((r) => [r.digest ? digestKey(r.digest) : "", r]));
      for (const g of batch) {
        const r = byKey.get(digestKey(g.digest));
        try {
          if (!r || r.status?.code === Status.NOT_FOUND) g.resolve(undefined);
          else if (r.status?.code === Status.RESOURCE_EXHAUSTED) g.resolve(await this.readStream(g.digest));
          else if (r.status && r.status.code !== Status.OK) throw new OrionError(`${this.address}: blob ${digestKey(g.digest)}: ${r.status.message}`, { code: r.status.code });
          else {
            verifyReceived(g.digest, r.data, this.address);
            g.resolve(r.data);
          }
        } catch (err) {
          g.reject(err);
        }
      }
    } catch (err) {
      for (const g of batch) g.reject(err);
    }
  }

  private readStream(digest: Digest): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stream = this.client.readBlob({ digest, offset: 0 }, this.readOptions());
      stream.on("data", (c: { offset: number; data: Buffer }) => {
        if (c.offset !== size || size + c.data.length > digest.sizeBytes) {
          stream.cancel();
          reject(new CorruptBlobError(`blob ${digestKey(digest)} from ${this.address}: chunk at offset ${c.offset} does not follow ${size} bytes; refused`));
          return;
        }
        chunks.push(c.data);
        size += c.data.length;
      });
      stream.on("error", (err: grpc.ServiceError) => {
        if (err.code === Status.NOT_FOUND) resolve(undefined);
        else if (err.code !== Status.CANCELLED) reject(fromServiceError(err, this.address, "ReadBlob"));
      });
      stream.on("end", () => {
        try {
          const data = Buffer.concat(chunks);
          verifyReceived(digest, data, this.address);
          resolve(data);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  private writeStream(digest: Digest, chunks: () => AsyncGenerator<Buffer>): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.client.writeBlob((err) => {
        if (!err) {
          if (this.remember) this.present.add(digestKey(digest));
          return resolve();
        }
        if (err.code === Status.DATA_LOSS) reject(new CorruptBlobError(`${this.address} refused blob ${digestKey(digest)}: ${err.details}`));
        else reject(fromServiceError(err, this.address, "WriteBlob"));
      });
      void (async () => {
        let offset = 0;
        for await (const data of chunks()) {
          const ok = stream.write({ digest: offset === 0 ? digest : undefined, offset, data, finishWrite: false });
          offset += data.length;
          if (!ok) await new Promise<void>((r) => stream.once("drain", r));
        }
        stream.end();
      })().catch((err) => {
        stream.cancel();
        reject(err);
      });
    });
  }
}

/** What one entry of a batch costs on the wire beyond its blob's bytes (a digest, a status), rounded up. */
const BATCH_ENTRY_BYTES = 128;

/** Splits requests into groups of at most BATCH_BYTES (one oversized item goes alone). */
function batches<T>(items: T[], size: (t: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = size(it);
    if (cur.length && bytes + n > BATCH_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Puts `data` at `dest` whole or not at all: written beside it (`.NAME.orion-UUID`, which a context leaves out), then renamed over it. */
export async function writeInPlace(dest: string, data: Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.orion-${randomUUID()}`);
  try {
    await fsp.writeFile(tmp, data, { mode, flag: "wx" });
    await fsp.chmod(tmp, mode); // the umask may have narrowed it
    await fsp.rename(tmp, dest);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
