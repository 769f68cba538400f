// Content addresses: SHA-256 digests of bytes and of protobuf messages, in the REAPI `Digest` shape.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Digest } from "../gen/orion/v1/remote_execution.js";

export type { Digest };

export const EMPTY_DIGEST: Digest = {
  hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  sizeBytes: 0,
};

export function digestOf(data: Uint8Array | string): Digest {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  return { hash: createHash("sha256").update(buf).digest("hex"), sizeBytes: buf.length };
}

/** Digest of a protobuf message through its ts-proto codec (deterministic: fields in number order). */
export function digestOfMessage<T>(codec: { encode(m: T): { finish(): Uint8Array } }, message: T): Digest {
  return digestOf(codec.encode(message).finish());
}

export async function digestOfFile(path: string): Promise<Digest> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash: hash.digest("hex"), sizeBytes: size };
}

/** `hash/size`, the form digests take in keys, logs and file names. */
export function digestKey(d: Digest): string {
  return `${d.hash}/${d.sizeBytes}`;
}

export function parseDigestKey(key: string): Digest {
  const [hash, size] = key.split("/");
  if (!hash || !/^[0-9a-f]{64}$/.test(hash) || size === undefined || !/^\d+$/.test(size)) {
    throw new Error(`not a digest: ${key}`);
  }
  return { hash, sizeBytes: Number(size) };
}

export function sameDigest(a: Digest | undefined, b: Digest | undefined): boolean {
  return !!a && !!b && a.hash === b.hash && a.sizeBytes === b.sizeBytes;
}

/** A SHA-256 over several labelled parts, for cache keys: each part is length-prefixed so no two part lists collide. */
export class KeyHasher {
  private readonly h = createHash("sha256");
  add(label: string, value: string | number | boolean | Uint8Array): this {
    const bytes = value instanceof Uint8Array ? value : Buffer.from(String(value));
    this.h.update(`${label}:${bytes.length}:`);
    this.h.update(bytes);
    this.h.update("\n");
    return this;
  }
  addList(label: string, values: readonly string[]): this {
    this.add(label, values.length);
    values.forEach((v, i) => this.add(`${label}[${i}]`, v));
    return this;
  }
  hex(): string {
    return this.h.digest("hex");
  }
}
