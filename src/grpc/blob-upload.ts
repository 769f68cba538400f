// WriteBlob, the streamed upload: spooled to a file as it arrives, bounded and hashed on the way, and stored only once its bytes match its digest.
import { createHash, randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CorruptBlobError, type Digest, type Logger, Status, digestKey, digestProblem, errorMessage } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { BlobsServer } from "../gen/orion/v1/blobs.js";
import type { BlobServiceOptions } from "./blob-service.js";
import { MAX_BLOB_BYTES } from "./limits.js";

/** Why a read-only store (a node serving its blobs to peers) refuses an upload. */
export const READ_ONLY = "this node serves its blobs read-only; uploads go to the head";

function invalid(message: string): { code: number; details: string } {
  return { code: Status.INVALID_ARGUMENT, details: `WriteBlob: ${message}` };
}

/** Room kept free on the spool's file system beyond an upload's own size: a store that fills its disk fails everything else. */
const SPOOL_RESERVE_BYTES = 64 * 1024 * 1024;

/** The WriteBlob handler: authenticated, refused by a read-only store, the spool file removed before the answer. */
export function writeBlobHandler(o: BlobServiceOptions, log: Logger): BlobsServer["writeBlob"] {
  return (call, callback) => {
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
        (r): Promise<Partial<grpc.StatusObject> | { committedSize: number }> => (r.code !== undefined ? Promise.resolve(r) : storeSpooled(o.store, tmp, r.digest, r.size, log)),
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
  };
}

/** Stores the spooled, verified upload; DATA_LOSS if the store's own hash disagrees. */
async function storeSpooled(store: BlobStore, tmp: string, digest: Digest, size: number, log: Logger): Promise<Partial<grpc.StatusObject> | { committedSize: number }> {
  try {
    // putFile hashes the bytes and stores nothing when they do not match.
    await store.putFile(tmp, digest);
    return { committedSize: size };
  } catch (err) {
    if (!(err instanceof CorruptBlobError)) return { code: Status.INTERNAL, details: errorMessage(err) };
    log.warn({ digest: digestKey(digest) }, "refused a streamed upload whose bytes do not match its digest");
    return { code: Status.DATA_LOSS, details: `blob ${digestKey(digest)} refused: ${errorMessage(err)}` };
  }
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
