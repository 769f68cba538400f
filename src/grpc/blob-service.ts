// The Blobs service over a BlobStore: find-missing, batched small blobs, chunked streams for large ones; every blob received is verified before it is stored (streamed uploads: blob-upload.ts).
import { CorruptBlobError, type Digest, type Logger, Status, checkDigest, digestKey, digestProblem, errorMessage, onceAny } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import { packTreeTar } from "../merkle/index.js";
import type { BlobsServer, BatchUpdateBlobsRequest_Request, BatchUpdateBlobsResponse_Response, BatchReadBlobsResponse_Response } from "../gen/orion/v1/blobs.js";
import type { Authenticator } from "./auth.js";
import { BATCH_BYTES, CHUNK_BYTES } from "./limits.js";
import { READ_ONLY, writeBlobHandler } from "./blob-upload.js";
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
      return { responses: await Promise.all(req.requests.map((r, i) => storeBatched(o.store, log, r, i))) };
    }),

    batchReadBlobs: unary(o.auth, (req) => readBatch(o.store, req.digests)),

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

    writeBlob: writeBlobHandler(o, log),
  };
}

/** One blob of a BatchUpdateBlobs: stored when its digest is well-formed and its bytes match it, else its own status. */
async function storeBatched(store: BlobStore, log: Logger, r: BatchUpdateBlobsRequest_Request, i: number): Promise<BatchUpdateBlobsResponse_Response> {
  const problem = digestProblem(r.digest);
  if (problem) return { digest: r.digest, status: { code: Status.INVALID_ARGUMENT, message: `BatchUpdateBlobs: requests[${i}].digest ${problem}` } };
  try {
    // put verifies the bytes against the digest and stores nothing on a mismatch.
    await store.put(r.data, r.digest!);
    return { digest: r.digest, status: { code: Status.OK, message: "" } };
  } catch (err) {
    const corrupt = err instanceof CorruptBlobError;
    if (corrupt) log.warn({ digest: digestKey(r.digest!) }, "refused an upload whose bytes do not match its digest");
    return { digest: r.digest, status: { code: corrupt ? Status.DATA_LOSS : Status.INTERNAL, message: errorMessage(err) } };
  }
}

/** BatchReadBlobs: each blob with its own status; what would take the answer past the message limit is left to a stream. */
async function readBatch(store: BlobStore, digests: Digest[]): Promise<{ responses: BatchReadBlobsResponse_Response[] }> {
  const responses: BatchReadBlobsResponse_Response[] = [];
  let bytes = 0;
  for (const [i, d] of digests.entries()) {
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
    const data = await store.get(d);
    if (data) bytes += data.length;
    responses.push(
      data
        ? { digest: d, data, status: { code: Status.OK, message: "" } }
        : { digest: d, data: Buffer.alloc(0), status: { code: Status.NOT_FOUND, message: `blob ${digestKey(d)} not found` } },
    );
  }
  return { responses };
}
