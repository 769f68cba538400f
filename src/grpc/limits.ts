// Transport limits shared by both ends: message sizes, chunking and batching of blobs, keep-alive.

/** Largest message either side accepts: room for a batch of leases or results with captured compiler output. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Blobs above this travel as a chunked stream; smaller ones ride in batches. */
export const STREAM_THRESHOLD = 1024 * 1024;
/** One streamed chunk: within grpc-js's default 4 MiB limit, so even a peer with defaults takes it. */
export const CHUNK_BYTES = 1024 * 1024;
/** Bytes of blob data in one batch request or response. */
export const BATCH_BYTES = 2 * 1024 * 1024;
/** Digests asked about in one FindMissingBlobs call. */
export const FIND_MISSING_BATCH = 4096;
/** The largest blob a WriteBlob may announce: checked before a byte is spooled (a node's outputs are capped at 1 GiB). */
export const MAX_BLOB_BYTES = 4 * 1024 ** 3;

/**
 * grpc-js keeps channelz statistics (call counts, timestamps, trace events) for every call unless told not to; nothing
 * reads them here, and on a one-machine farm they were ~3 % of the head's CPU (`node --cpu-prof`, a Redis build).
 */
const CHANNELZ_OFF = 0;

export const CHANNEL_OPTIONS = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  // Long-lived daemons: notice a dead peer within ~40 s even when idle.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 2_000,
  "grpc.enable_channelz": CHANNELZ_OFF,
} as const;

export const SERVER_OPTIONS = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.enable_channelz": CHANNELZ_OFF,
} as const;
