// Per-method request caps: every method of every service has one on purpose, none above the server's limit, and an oversized message is never decoded.
import { describe, expect, it } from "vitest";
import { BlobsService, FindMissingBlobsRequest } from "../gen/orion/v1/blobs.js";
import { BuildsService, NodeControlService } from "../gen/orion/v1/scheduler.js";
import { capFor, MESSAGE_CAPS, OversizedMessage, SERVER_RECEIVE_LIMIT, withMessageCaps } from "./message-caps.js";
import { MAX_MESSAGE_BYTES } from "./limits.js";

const services = [BlobsService, NodeControlService, BuildsService];

describe("message caps", () => {
  it("names a cap for every method of every service, within the server-wide limit", () => {
    const paths = services.flatMap((s) => Object.values(s).map((m) => m.path));
    expect(paths.filter((p) => !(p in MESSAGE_CAPS))).toEqual([]);
    expect(Object.keys(MESSAGE_CAPS).filter((p) => !paths.includes(p))).toEqual([]);
    for (const p of paths) expect(capFor(p)).toBeLessThanOrEqual(SERVER_RECEIVE_LIMIT);
    expect(SERVER_RECEIVE_LIMIT).toBe(MAX_MESSAGE_BYTES);
    expect(capFor("/orion.v1.NodeControl/Heartbeat")).toBeLessThan(capFor("/orion.v1.Blobs/BatchUpdateBlobs"));
  });

  it("decodes a message within its cap and hands one over it on undecoded, naming the method and the cap", () => {
    const wrapped = withMessageCaps(BlobsService).findMissingBlobs;
    const small = Buffer.from(FindMissingBlobsRequest.encode({ blobDigests: [{ hash: "a".repeat(64), sizeBytes: 1 }] }).finish());
    expect(wrapped.requestDeserialize(small)).toEqual({ blobDigests: [{ hash: "a".repeat(64), sizeBytes: 1 }] });
    // Not a valid message at all: an oversized one must not even be parsed.
    const big = wrapped.requestDeserialize(Buffer.alloc(2 * 1024 * 1024, 0xff)) as unknown;
    expect(big).toBeInstanceOf(OversizedMessage);
    expect((big as OversizedMessage).details).toBe("FindMissingBlobs: a request message of 2097152 bytes is over this method's cap of 1048576 bytes");
  });
});
