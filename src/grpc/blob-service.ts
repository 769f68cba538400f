// The Blobs service over a BlobStore: find-missing, batched small blobs, chunked streams for large ones; every blob received is verified before it is stored.
import { createHash, randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CorruptBlobError, type Digest, type Logger, Status, checkDigest, digestKey, digestProblem, errorMessage, onceAny } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import { packTreeTar } from "../merkle/index.js";
import type { BlobsServer, BatchUpdateBlobsResponse_Response, BatchReadBlobsResponse_Response } from "../gen/orion/v1/blobs.js";
import type { Authenticator } from "./auth.js";
import { BATCH_BYTES, CHUNK_BYTES, MAX_BLOB_BYTES } from "./limits.js";
import { serverStream, unary } from "./handlers.js";

export interface BlobServiceOptions {
  store: BlobStore;
  auth: Authenticator;
  /** Where streamed uploads are spooled before they are verified and stored. */
  tmpDir: string;
  logger: Logger;
  /** Serve reads only (a node serving its store to peers): writes are refused with PERMISSION_DENIED. */
  readOnly?: boolean;
}

const READ_ONLY = "this node serves its blobs read-only; uploads go to the head";

/** A digest a peer sent: a SHA-256 hex hash and a non-negative size. */
export function validDigest(d: Digest | undefined): d is Digest {
  return digestProblem(d) === undefined;
}

function invalid(message: string): { code: number; details: string } {
  return { code: Status.INVALID_ARGUMENT, details: `WriteBlob: ${message}` };
}

/** Room kept free on the spool's file system beyond an upload's own size: a store that fills its disk fails everything else. */
const SPOOL_RESERVE_BYTES = 64 * 1024 * 1024;

export function blobService(o: BlobServiceOptions): BlobsServer {
  const log = o.logger.child({ module: "blobs" });
  return {
    findMissingBlobs: unary(o.auth, async (req) => {
      // A malformed digest is refused, never dropped: dropped, it would read as present and its blob would never be sent.
      for (const [i, d] of req.blobDigests.entries()) checkDigest("FindMissingBlobs", `blob_digests[${i}]`, d);
      return { missingBlobDigests: await o.store.findMissing(req.blobDigests) };
    }),

    batchUpdateBlobs: unary(o.auth, async (req) => {
      if (o.readOnly) throw Object.assign(new Error(READ_ONLY), { code: Status.PERMISSION_DENIED });
      // The blobs of one batch are stored concurrently: each put is a handful of file-system round trips.
      const responses = await Promise.all(
        req.requests.map(async (r, i): Promise<BatchUpdateBlobsResponse_Response> => {
          const problem = digestProblem(r.digest);
          if (problem) return { digest: r.digest, status: { code: Status.INVALID_ARGUMENT, message: `BatchUpdateBlobs: requests[${i}].digest ${problem}` } };
          try {
            // put verifies the bytes against the digest and stores nothing on a mismatch.
            await o.store.put(r.data, r.digest!);
            return { digest: r.digest, status: { code: Status.OK, message: "" } };
          } catch (err) {
            const corrupt = err instanceof CorruptBlobError;
            if (corrupt) log.warn({ digest: digestKey(r.digest!) }, "refused an upload whose bytes do not match its digest");
            return { digest: r.digest, status: { code: corrupt ? Status.DATA_LOSS : Status.INTERNAL, message: errorMessage(err) } };
          }
        }),
      );
      return { responses };
    }),

    batchReadBlobs: unary(o.auth, async (req) => {
      const responses: BatchReadBlobsResponse_Response[] = [];
      let bytes = 0;
      for (const [i, d] of req.digests.entries()) {
        const problem = digestProblem(d);
        if (problem) {
          responses.push({ digest: d, data: Buffer.alloc(0), status: { code: Status.INVALID_ARGUMENT, message: `BatchReadBlobs: digests[${i}] ${problem}` } });
          continue;
        }
        // Keep the answer within the message limit: the client streams what does not fit.
        if (bytes + d.sizeBytes > BATCH_BYTES && bytes > 0) {
          responses.push({ digest: d, data: Buffer.alloc(0), status: { code: Status.RESOURCE_EXHAUSTED, message: "batch too large; read it as a stream" } });
          continue;
        }
        const data = await o.store.get(d);
        if (data) bytes += data.length;
        responses.push(
          data
            ? { digest: d, data, status: { code: Status.OK, message: "" } }
            : { digest: d, data: Buffer.alloc(0), status: { code: Status.NOT_FOUND, message: `blob ${digestKey(d)} not found` } },
        );
      }
      return { responses };
    }),

    readBlob: serverStream(o.auth, async (req, call) => {
      const d = checkDigest("ReadBlob", "digest", req.digest);
      if (!Number.isSafeInteger(req.offset) || req.offset < 0 || req.offset > d.sizeBytes) {
        throw Object.assign(new Error(`ReadBlob: offset ${req.offset} is outside the blob's 0..${d.sizeBytes}`), { code: Status.INVALID_ARGUMENT });
      }
      const data = await o.store.get(d);
      if (!data) throw Object.assign(new Error(`blob ${digestKey(d)} not found`), { code: Status.NOT_FOUND });
      // At least one chunk, so an empty blob is an answer too.
      let at = Math.max(0, req.offset);
      do {
        if (call.cancelled) return;
        const ok = call.write({ digest: at === 0 ? d : undefined, offset: at, data: data.subarray(at, at + CHUNK_BYTES), finishWrite: false });
        if (!ok) await onceAny(call, ["drain", "cancelled"]);
        at += CHUNK_BYTES;
      } while (at < data.length);
      call.end();
    }),

    readTree: serverStream(o.auth, async (req, call) => {
      const root = checkDigest("ReadTree", "root_digest", req.rootDigest);
      const started = performance.now();
      let bytes = 0;
      for await (const data of packTreeTar(o.store, root, CHUNK_BYTES)) {
        if (call.cancelled) return; // leaving the loop stops the packer
        bytes += data.length;
        // A cancelled call never drains: waiting for either keeps a gone node from holding the packer.
        if (!call.write({ data })) await onceAny(call, ["drain", "cancelled"]);
      }
      call.end();
      log.info({ root: digestKey(root), bytes, ms: Math.round(performance.now() - started) }, "sent a tree as one tar stream");
    }),

    writeBlob(call, callback) {
      const denied = o.auth(call.metadata);
      if (denied) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: denied });
        call.resume();
        return;
      }
      if (o.readOnly) {
        callback({ code: grpc.status.PERMISSION_DENIED, details: READ_ONLY });
        call.resume();
        return;
      }
      const tmp = join(o.tmpDir, `upload-${randomUUID()}`);
      // A client that hangs up mid-upload ends the read loop (as an error) instead of leaving it waiting forever.
      call.on("cancelled", () => call.destroy(new Error("the client cancelled the upload")));
      receive(call, tmp, o.tmpDir)
        .then(
          (r): Promise<Partial<grpc.StatusObject> | { committedSize: number }> => (r.code !== undefined ? Promise.resolve(r) : store(r.digest, r.size)),
          (err: unknown) => ({ code: call.cancelled ? Status.CANCELLED : Status.INTERNAL, details: errorMessage(err) }),
        )
        // The spool file goes before the answer: nothing of a refused blob outlives the call.
        .then(async (outcome) => {
          await fsp.rm(tmp, { force: true });
          if ("committedSize" in outcome) callback(null, outcome);
          else {
            if (outcome.code !== Status.CANCELLED) log.warn({ err: outcome.details }, "refused a streamed upload");
            callback(outcome);
          }
        });

      async function store(digest: Digest, size: number): Promise<Partial<grpc.StatusObject> | { committedSize: number }> {
        try {
          // putFile hashes the bytes and stores nothing when they do not match.
          await o.store.putFile(tmp, digest);
          return { committedSize: size };
        } catch (err) {
          if (!(err instanceof CorruptBlobError)) return { code: Status.INTERNAL, details: errorMessage(err) };
          log.warn({ digest: digestKey(digest) }, "refused a streamed upload whose bytes do not match its digest");
          return { code: Status.DATA_LOSS, details: `blob ${digestKey(digest)} refused: ${errorMessage(err)}` };
        }
      }
    },
  };
}

/**
 * Spools a streamed upload to `tmp`, bounded and verified as it arrives: the size the first chunk's digest claims must
 * be within MAX_BLOB_BYTES and fit the spool's disk before a byte is written; chunks must follow each other and stay
 * within that size; the bytes are hashed as they come, so a stream that ends short or hashes to another digest is
 * refused here, before the store sees it.
 */
async function receive(
  call: AsyncIterable<unknown>,
  tmp: string,
  spoolDir: string,
): Promise<{ code: number; details: string } | { code?: undefined; digest: Digest; size: number }> {
  let digest: Digest | undefined;
  let size = 0;
  const hash = createHash("sha256");
  let fh: fsp.FileHandle | undefined;
  try {
    for await (const chunk of call) {
      const c = chunk as { digest?: Digest; offset: number; data: Buffer };
      if (!digest) {
        const problem = digestProblem(c.digest);
        if (problem) return invalid(`digest (in the first chunk) ${problem}`);
        digest = c.digest!;
        if (digest.sizeBytes > MAX_BLOB_BYTES) {
          return { code: Status.RESOURCE_EXHAUSTED, details: `WriteBlob: blob ${digestKey(digest)} is larger than the ${MAX_BLOB_BYTES}-byte cap on one blob` };
        }
        const fs = await fsp.statfs(spoolDir);
        const free = fs.bavail * fs.bsize;
        if (digest.sizeBytes + SPOOL_RESERVE_BYTES > free) {
          return { code: Status.RESOURCE_EXHAUSTED, details: `WriteBlob: no room for blob ${digestKey(digest)}: ${free} bytes free in ${spoolDir}` };
        }
        fh = await fsp.open(tmp, "wx", 0o600);
      }
      if (c.offset !== size) return invalid(`chunk at offset ${c.offset}, expected ${size}`);
      if (size + c.data.length > digest.sizeBytes) return invalid(`more bytes than the ${digest.sizeBytes} the digest names`);
      hash.update(c.data);
      await fh!.write(c.data);
      size += c.data.length;
    }
  } finally {
    await fh?.close();
  }
  if (!digest) return invalid("an empty write names no blob");
  if (size !== digest.sizeBytes) return invalid(`the stream ended after ${size} of the ${digest.sizeBytes} bytes the digest names`);
  const got = hash.digest("hex");
  if (got !== digest.hash) return { code: Status.DATA_LOSS, details: `WriteBlob: blob ${digestKey(digest)} refused: its bytes hash to ${got}` };
  return { digest, size };
}
