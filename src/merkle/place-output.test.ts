// placeOutput: a restored output is copied out unless the file in place already holds its bytes; then it only gets new times.
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { placeOutput } from "./place-output.js";
import { StatCache } from "./stat-cache.js";

let dir: string;
let store: BlobStore;
let statCache: StatCache;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "orion-place-"));
  store = createBlobStore({ dir: join(dir, "cas") });
  // No racy window: a file hashed now is trusted at once (the test writes and hashes within one clock tick).
  statCache = new StatCache(join(dir, "stat.db"), { racyWindowMs: 0 });
});

afterEach(async () => {
  statCache.close();
  store.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

const inode = async (p: string) => (await fsp.stat(p, { bigint: true })).ino;

describe("placeOutput", () => {
  it("copies an output out when the file is missing or differs, and remembers its digest", async () => {
    const digest = await store.put(Buffer.from("object v2"));
    const dest = join(dir, "a.o");
    expect(await placeOutput(store, statCache, digest, dest, false)).toBe(true);
    expect(await fsp.readFile(dest, "utf8")).toBe("object v2");
    expect(statCache.known(dest, await fsp.lstat(dest, { bigint: true }))).toEqual(digest);
    await fsp.writeFile(dest, "object v1");
    await statCache.digestOf(dest);
    expect(await placeOutput(store, statCache, digest, dest, false)).toBe(true);
    expect(await fsp.readFile(dest, "utf8")).toBe("object v2");
  });

  it("declines an output whose folder does not exist (the tool's own error to report), creating nothing", async () => {
    const digest = await store.put(Buffer.from("object"));
    expect(await placeOutput(store, statCache, digest, join(dir, "no-such-dir", "a.o"), false)).toBe(false);
    await expect(fsp.stat(join(dir, "no-such-dir"))).rejects.toThrow(/ENOENT/);
  });

  it("leaves a file that holds the bytes already in place and gives it new times, as a copy would", async () => {
    const digest = await store.put(Buffer.from("same bytes"));
    const dest = join(dir, "b.o");
    await fsp.writeFile(dest, "same bytes", { mode: 0o644 });
    await fsp.chmod(dest, 0o644);
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(dest, old, old);
    await statCache.digestOf(dest);
    const before = await inode(dest);
    expect(await placeOutput(store, statCache, digest, dest, false)).toBe(true);
    expect(await inode(dest)).toBe(before);
    expect((await fsp.stat(dest)).mtimeMs).toBeGreaterThan(old.getTime() + 30_000);
    expect(statCache.known(dest, await fsp.lstat(dest, { bigint: true }))).toEqual(digest);
  });

  it("copies over a file it cannot vouch for: unknown to the stat cache, another mode, or a second link", async () => {
    const digest = await store.put(Buffer.from("same bytes"));
    const unknown = join(dir, "c.o");
    await fsp.writeFile(unknown, "same bytes");
    const before = await inode(unknown);
    expect(await placeOutput(store, statCache, digest, unknown, false)).toBe(true);
    expect(await inode(unknown)).not.toBe(before);

    const exe = join(dir, "d");
    await fsp.writeFile(exe, "same bytes");
    await fsp.chmod(exe, 0o644);
    await statCache.digestOf(exe);
    const exeBefore = await inode(exe);
    expect(await placeOutput(store, statCache, digest, exe, true)).toBe(true);
    expect(await inode(exe)).not.toBe(exeBefore);
    expect((await fsp.stat(exe)).mode & 0o777).toBe(0o755);

    const linked = join(dir, "e.o");
    await fsp.writeFile(linked, "same bytes");
    await fsp.chmod(linked, 0o644);
    await fsp.link(linked, join(dir, "e-link.o"));
    await statCache.digestOf(linked);
    const linkedBefore = await inode(linked);
    expect(await placeOutput(store, statCache, digest, linked, false)).toBe(true);
    expect(await inode(linked)).not.toBe(linkedBefore);
  });
});
