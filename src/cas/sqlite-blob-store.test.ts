// Tests for the local CAS: verification, corruption, materialization, eviction, sharing between processes.
import { fork } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CorruptBlobError, EMPTY_DIGEST, FakeClock, OrionError, digestOf, type Digest } from "../core/index.js";
import { createBlobStore } from "./index.js";
import { SqliteBlobStore } from "./sqlite-blob-store.js";

let dir: string;
const open: { close(): void }[] = [];

function store(options: { maxBytes?: number; clock?: FakeClock; soleWriter?: boolean } = {}): SqliteBlobStore {
  const s = new SqliteBlobStore({ dir: join(dir, "cas"), ...options });
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-cas-"));
});

afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("SqliteBlobStore", () => {
  it("round-trips bytes and lays files out sharded and read-only", async () => {
    const s = store();
    const d = await s.put(Buffer.from("hello\n"));
    expect(d).toEqual(digestOf("hello\n"));
    expect((await s.get(d))?.toString()).toBe("hello\n");
    expect(await s.has(d)).toBe(true);
    const file = join(dir, "cas", "blobs", d.hash.slice(0, 2), d.hash);
    expect(s.blobPath(d.hash)).toBe(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o444);
    expect(s.sizeBytes()).toBe(6);
    // Putting the same bytes again stores nothing new.
    await s.put(Buffer.from("hello\n"));
    expect(s.sizeBytes()).toBe(6);
    expect(fs.readdirSync(join(dir, "cas", "tmp"))).toEqual([]);
  });

  it("stores files through putFile", async () => {
    const s = store();
    const src = join(dir, "src.bin");
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    fs.writeFileSync(src, bytes);
    const d = await s.putFile(src, digestOf(bytes));
    expect(d).toEqual(digestOf(bytes));
    expect((await s.get(d))?.equals(bytes)).toBe(true);
  });

  it("rejects bytes that do not match the expected digest and stores nothing", async () => {
    const s = store();
    const wrong = digestOf("something else");
    await expect(s.put(Buffer.from("hello"), wrong)).rejects.toBeInstanceOf(CorruptBlobError);
    const src = join(dir, "f");
    fs.writeFileSync(src, "hello");
    await expect(s.putFile(src, wrong)).rejects.toBeInstanceOf(CorruptBlobError);
    expect(await s.findMissing([wrong, digestOf("hello")])).toHaveLength(2);
    expect(s.sizeBytes()).toBe(0);
    expect(fs.readdirSync(join(dir, "cas", "tmp"))).toEqual([]);
  });

  it("get re-hashes: same size, same mtime, other bytes", async () => {
    const s = store();
    const d = await s.put(Buffer.from("good bytes"));
    const file = s.blobPath(d.hash);
    const st = fs.statSync(file);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, "evil bytes");
    fs.utimesSync(file, st.atime, st.mtime); // the stamp lies: only a re-hash can tell
    expect(await s.findMissing([d])).toEqual([]);
    expect(await s.get(d)).toBeUndefined();
    expect(await s.findMissing([d])).toEqual([d]);
  });

  /** Flips one byte of a stored blob in place, keeping its mtime: the stamp check cannot see it. */
  async function flipKeepingMtime(s: SqliteBlobStore, d: Digest, at = 0): Promise<void> {
    // Past the file system's coarse clock tick, so the flip moves ctime (what a store's own memo goes by).
    await new Promise((r) => setTimeout(r, 20));
    const file = s.blobPath(d.hash);
    const st = fs.statSync(file);
    fs.chmodSync(file, 0o644);
    const bytes = fs.readFileSync(file);
    bytes[at] = bytes[at]! ^ 0x01;
    fs.writeFileSync(file, bytes);
    fs.chmodSync(file, 0o444);
    fs.utimesSync(file, st.atime, st.mtime);
  }

  it("never copies rot out: copyOut hashes as it copies, drops the blob and leaves the destination alone", async () => {
    const s = store();
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 5); // several read chunks
    const d = await s.put(bytes);
    const dest = join(dir, "tree", "x.o");
    fs.mkdirSync(join(dir, "tree"));
    fs.writeFileSync(dest, "old");
    // Hashed intact first (as a cache hit's look-up does): the flip after it still shows, since it moves ctime.
    expect(await s.findMissing([d], { verify: true })).toEqual([]);
    await flipKeepingMtime(s, d, bytes.length - 1);
    expect(await s.findMissing([d])).toEqual([]); // the stamp alone is fooled
    expect(await s.copyOut(d, dest, false)).toBe(false);
    expect(fs.readFileSync(dest, "utf8")).toBe("old");
    expect(fs.readdirSync(join(dir, "tree"))).toEqual(["x.o"]); // no temp file left
    expect(fs.existsSync(s.blobPath(d.hash))).toBe(false);
    expect(await s.findMissing([d])).toEqual([d]);
    // A fresh copy heals it, and an intact blob copies out byte for byte with the mode asked for.
    await s.put(bytes);
    expect(await s.copyOut(d, dest, true)).toBe(true);
    expect(fs.readFileSync(dest).equals(bytes)).toBe(true);
    expect(fs.statSync(dest).mode & 0o777).toBe(0o755);
    // Just hashed by a look-up: copied without a second hash, same bytes.
    expect(await s.findMissing([d], { verify: true })).toEqual([]);
    fs.unlinkSync(dest);
    expect(await s.copyOut(d, dest, false)).toBe(true);
    expect(fs.readFileSync(dest).equals(bytes)).toBe(true);
    expect(fs.statSync(dest).mode & 0o777).toBe(0o644);
  });

  it("never links rot into a context: materialize hashes the stored file first", async () => {
    const s = store();
    const d = await s.put(Buffer.from("int x = 1;\n"));
    await flipKeepingMtime(s, d);
    expect(await s.materialize(d, join(dir, "ctx", "x.c"), false)).toBe(false);
    expect(fs.existsSync(join(dir, "ctx", "x.c"))).toBe(false);
    expect(await s.has(d)).toBe(false);
  });

  it("findMissing with verify hashes each blob and drops the rotten one; without it, stamps answer", async () => {
    const s = store();
    const good = await s.put(Buffer.from("good"));
    const bad = await s.put(Buffer.from("soon bad"));
    await flipKeepingMtime(s, bad);
    expect(await s.findMissing([good, bad])).toEqual([]);
    expect(await s.findMissing([good, bad], { verify: true })).toEqual([bad]);
    expect(await s.findMissing([good, bad])).toEqual([bad]);
    expect(s.sizeBytes()).toBe(4);
  });

  it("verifyAll drops rot and rows without files, indexes sound unindexed files, removes stray ones", async () => {
    const s = store();
    const intact = await s.put(Buffer.from("intact"));
    const rotten = await s.put(Buffer.from("rotten"));
    const gone = await s.put(Buffer.from("gone"));
    await flipKeepingMtime(s, rotten);
    fs.unlinkSync(s.blobPath(gone.hash));
    // A sound blob file the index lost (a crash between rename and insert), and a file that is no blob at all.
    const orphan = digestOf("orphan");
    fs.mkdirSync(join(dir, "cas", "blobs", orphan.hash.slice(0, 2)), { recursive: true });
    fs.writeFileSync(s.blobPath(orphan.hash), "orphan");
    const junk = join(dir, "cas", "blobs", intact.hash.slice(0, 2), "junk");
    fs.writeFileSync(junk, "x");
    const r = await s.verifyAll();
    expect(r).toMatchObject({ checked: 2, rotten: 1, missing: 1, orphansIndexed: 1, orphansRemoved: 1 });
    expect(r.bytes).toBe("intact".length + "orphan".length);
    expect(s.sizeBytes()).toBe(r.bytes);
    expect(fs.existsSync(s.blobPath(rotten.hash))).toBe(false);
    expect(fs.existsSync(junk)).toBe(false);
    expect(await s.findMissing([intact, rotten, gone, orphan], { verify: true })).toEqual([rotten, gone]);
    // A second pass finds nothing left to repair.
    expect(await s.verifyAll()).toMatchObject({ checked: 2, rotten: 0, missing: 0, orphansIndexed: 0, orphansRemoved: 0 });
  });

  it("a sole writer answers from what it knows it holds, and forgets what it evicts or finds gone", async () => {
    const s = store({ soleWriter: true, maxBytes: 10 });
    const a = await s.put(Buffer.from("aaaa"));
    expect(await s.findMissing([a])).toEqual([]);
    // Removed behind its back: still known (no stat) until a read finds it gone; then it is missing.
    fs.unlinkSync(s.blobPath(a.hash));
    expect(await s.findMissing([a])).toEqual([]);
    expect(await s.get(a)).toBeUndefined();
    expect(await s.findMissing([a])).toEqual([a]);
    // Eviction forgets: b and c fill the store past 10 bytes, and the oldest goes.
    const b = await s.put(Buffer.from("bbbbbb"));
    await s.put(Buffer.from("cccccc"));
    expect(await s.findMissing([b])).toEqual([b]);
    // A store many processes share (the default) stats every time.
    const shared = store();
    const d = await shared.put(Buffer.from("dd"));
    fs.unlinkSync(shared.blobPath(d.hash));
    expect(await shared.findMissing([d])).toEqual([d]);
  });

  it("drops a blob whose file was overwritten on disk", async () => {
    const s = store();
    const d = await s.put(Buffer.from("good bytes"));
    const file = s.blobPath(d.hash);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, "evil bytes"); // same size: the moved mtime makes findMissing re-hash it
    // File times come from the kernel's coarse clock: a write within the same tick as the put keeps the old mtime.
    const st = fs.statSync(file);
    fs.utimesSync(file, st.atime, new Date(st.mtimeMs + 5_000));
    expect(await s.findMissing([d])).toEqual([d]);
    expect(await s.get(d)).toBeUndefined();
    expect(fs.existsSync(file)).toBe(false);
    expect(await s.findMissing([d])).toEqual([d]);
    expect(s.sizeBytes()).toBe(0);
    // A fresh upload heals it.
    await s.put(Buffer.from("good bytes"));
    expect((await s.get(d))?.toString()).toBe("good bytes");
  });

  it("treats a truncated blob as missing, even before anyone reads it", async () => {
    const s = store();
    const d = await s.put(Buffer.from("0123456789"));
    fs.truncateSync(s.blobPath(d.hash), 4);
    expect(await s.findMissing([d])).toEqual([d]);
    expect(await s.get(d)).toBeUndefined();
    expect(await s.materialize(d, join(dir, "out"), false)).toBe(false);
  });

  it("treats a vanished blob file as missing", async () => {
    const s = store();
    const d = await s.put(Buffer.from("here today"));
    fs.unlinkSync(s.blobPath(d.hash));
    expect(await s.get(d)).toBeUndefined();
    expect(await s.has(d)).toBe(false);
    expect(s.sizeBytes()).toBe(0);
  });

  it("answers findMissing in the order asked, including a right hash with a wrong size", async () => {
    const s = store();
    const a = await s.put(Buffer.from("a"));
    const b = digestOf("b");
    const c = await s.put(Buffer.from("c"));
    const wrongSize = { hash: a.hash, sizeBytes: 99 };
    expect(await s.findMissing([a, b, c, wrongSize])).toEqual([b, wrongSize]);
    expect(await s.get(wrongSize)).toBeUndefined();
    expect(await s.has(a)).toBe(true); // the good blob survives a bad request
  });

  it("never turns a hostile hash into a path", async () => {
    const s = store();
    fs.writeFileSync(join(dir, "cas", "secret"), "s");
    const evil = { hash: "../secret", sizeBytes: 1 };
    expect(await s.get(evil)).toBeUndefined();
    expect(await s.findMissing([evil])).toEqual([evil]);
    expect(await s.materialize(evil, join(dir, "out"), false)).toBe(false);
    expect(() => s.blobPath("../secret")).toThrow(OrionError);
  });

  it("holds the empty blob", async () => {
    const s = store();
    expect(await s.findMissing([EMPTY_DIGEST])).toEqual([EMPTY_DIGEST]);
    expect(await s.put(new Uint8Array(0))).toEqual(EMPTY_DIGEST);
    expect((await s.get(EMPTY_DIGEST))?.length).toBe(0);
    const dest = join(dir, "empty");
    expect(await s.materialize(EMPTY_DIGEST, dest, false)).toBe(true);
    expect(fs.readFileSync(dest).length).toBe(0);
  });

  it("materializes as a hard link, or as an executable copy, replacing what was there", async () => {
    const s = store();
    const d = await s.put(Buffer.from("#!/bin/sh\necho hi\n"));
    const dest = join(dir, "out", "deep", "tool");
    fs.mkdirSync(join(dir, "out", "deep"), { recursive: true });
    fs.writeFileSync(dest, "stale");

    expect(await s.materialize(d, dest, false)).toBe(true);
    const linked = fs.statSync(dest);
    expect(linked.ino).toBe(fs.statSync(s.blobPath(d.hash)).ino);
    expect(linked.mode & 0o777).toBe(0o444);
    // Again onto the same link: rename(2) is a no-op there, and no temp file may be left behind.
    expect(await s.materialize(d, dest, false)).toBe(true);
    expect(fs.readdirSync(join(dir, "out", "deep"))).toEqual(["tool"]);

    expect(await s.materialize(d, dest, true)).toBe(true);
    const copied = fs.statSync(dest);
    expect(copied.ino).not.toBe(fs.statSync(s.blobPath(d.hash)).ino);
    expect(copied.mode & 0o777).toBe(0o555);
    expect(fs.readFileSync(dest, "utf8")).toBe("#!/bin/sh\necho hi\n");
    expect(fs.readdirSync(join(dir, "out", "deep"))).toEqual(["tool"]);

    expect(await s.materialize(digestOf("absent"), join(dir, "nope"), false)).toBe(false);
    expect(fs.existsSync(join(dir, "nope"))).toBe(false);
  });

  it("evicts least recently accessed blobs down to 90% of maxBytes", async () => {
    const clock = new FakeClock();
    const s = store({ maxBytes: 1000, clock });
    const blob = (c: string) => Buffer.alloc(300, c);
    const a = await s.put(blob("a"));
    clock.advance(10);
    const b = await s.put(blob("b"));
    clock.advance(10);
    const c = await s.put(blob("c"));
    clock.advance(10);
    await s.get(a); // a is now more recent than b and c
    clock.advance(10);
    const d = await s.put(blob("d")); // 1200 > 1000: evict the oldest (b) until at most 900 remain
    expect(await s.findMissing([a, b, c, d])).toEqual([b]);
    expect(s.sizeBytes()).toBe(900);
    clock.advance(10);
    await s.materialize(c, join(dir, "c"), false); // c is now the most recent
    clock.advance(10);
    const e = await s.put(blob("e")); // 1200 again; order is now a, d, c, e
    expect(await s.findMissing([a, b, c, d, e])).toEqual([a, b]);
    expect(s.sizeBytes()).toBe(900);
    expect(fs.existsSync(s.blobPath(a.hash))).toBe(false);
  });

  it("keeps last-access updates across close and reopen", async () => {
    const clock = new FakeClock();
    let s = store({ maxBytes: 1000, clock });
    const a = await s.put(Buffer.alloc(400, "a"));
    clock.advance(10);
    const b = await s.put(Buffer.alloc(400, "b"));
    clock.advance(10);
    await s.get(a);
    s.close();
    s = store({ maxBytes: 1000, clock });
    clock.advance(10);
    await s.put(Buffer.alloc(400, "c"));
    expect(await s.findMissing([a, b])).toEqual([b]);
  });

  it("lets two stores share one folder with interleaved writes", async () => {
    const s1 = store();
    const s2 = store();
    const blobs = Array.from({ length: 200 }, (_, i) => Buffer.from(`blob ${i % 120}`)); // duplicates on purpose
    const digests = await Promise.all(blobs.map((b, i) => (i % 2 ? s1 : s2).put(b)));
    await Promise.all(blobs.map((b) => s1.put(b)).concat(blobs.map((b) => s2.put(b))));
    const unique = new Map(digests.map((d) => [d.hash, d]));
    expect(unique.size).toBe(120);
    expect(await s1.findMissing([...unique.values()])).toEqual([]);
    expect(await s2.findMissing([...unique.values()])).toEqual([]);
    const expectedTotal = [...unique.values()].reduce((n, d) => n + d.sizeBytes, 0);
    expect(s1.sizeBytes()).toBe(expectedTotal);
    expect(s2.sizeBytes()).toBe(expectedTotal);
    for (const d of unique.values()) expect((await s2.get(d))?.length).toBe(d.sizeBytes);
    // One store drops a corrupt blob; the other sees it missing rather than serving it.
    const victim = digests[0]!;
    fs.chmodSync(s1.blobPath(victim.hash), 0o644);
    fs.writeFileSync(s1.blobPath(victim.hash), "x".repeat(victim.sizeBytes));
    expect(await s1.get(victim)).toBeUndefined();
    expect(await s2.has(victim)).toBe(false);
    expect(fs.readdirSync(join(dir, "cas", "tmp"))).toEqual([]);
  });

  it("lets a second process write the same blobs concurrently", async () => {
    const child = await buildChildScript(dir);
    const cas = join(dir, "cas");
    const s = store();
    const payloads = Array.from({ length: 1000 }, (_, i) => `shared ${i}\n`.repeat(1 + (i % 50)));
    const payloadFile = join(dir, "payloads.json");
    fs.writeFileSync(payloadFile, JSON.stringify(payloads));
    const p = fork(child, [cas, payloadFile], { stdio: "inherit" });
    const exited = new Promise<void>((resolve, reject) => {
      p.on("error", reject);
      p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}`))));
    });
    // Both sides open the store first, then start writing at the same moment, so the writes really overlap.
    await new Promise<void>((resolve) => p.once("message", () => resolve()));
    p.send("go");
    await Promise.all([exited, Promise.all(payloads.map((x) => s.put(Buffer.from(x))))]);
    const digests = [...new Map(payloads.map((p) => [digestOf(p).hash, digestOf(p)])).values()];
    expect(await s.findMissing(digests)).toEqual([]);
    for (const d of digests) expect((await s.get(d))?.length).toBe(d.sizeBytes);
    expect(s.sizeBytes()).toBe(digests.reduce((n, d) => n + d.sizeBytes, 0));
  });
});

describe("createBlobStore", () => {
  it("names the path when the folder cannot be made", () => {
    const file = join(dir, "a-file");
    fs.writeFileSync(file, "");
    const bad = join(file, "cas");
    expect(() => createBlobStore({ dir: bad })).toThrow(OrionError);
    expect(() => createBlobStore({ dir: bad })).toThrow(bad);
  });

  it("returns a working store", async () => {
    const s = createBlobStore({ dir: join(dir, "made", "here") });
    open.push(s);
    const d: Digest = await s.put(Buffer.from("x"));
    expect(await s.has(d)).toBe(true);
  });
});

/**
 * Transpiles the store and its imports to plain ESM in `dir` and writes a child script that uses it: the second
 * process runs the real SqliteBlobStore, not a stand-in.
 */
async function buildChildScript(dir: string): Promise<string> {
  const srcRoot = fileURLToPath(new URL("..", import.meta.url));
  const out = join(dir, "child");
  for (const folder of ["core", "cas"]) {
    for (const rel of fs.readdirSync(join(srcRoot, folder), { recursive: true }) as string[]) {
      if (!rel.endsWith(".ts") || rel.endsWith(".test.ts")) continue;
      const code = ts.transpileModule(fs.readFileSync(join(srcRoot, folder, rel), "utf8"), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      }).outputText;
      const dest = join(out, folder, rel.replace(/\.ts$/, ".js"));
      fs.mkdirSync(join(dest, ".."), { recursive: true });
      fs.writeFileSync(dest, code);
    }
  }
  fs.writeFileSync(join(out, "package.json"), '{"type":"module"}');
  fs.symlinkSync(join(srcRoot, "..", "node_modules"), join(out, "node_modules"));
  const script = join(out, "child.js");
  fs.writeFileSync(
    script,
    `import { readFileSync } from "node:fs";
import { SqliteBlobStore } from "./cas/sqlite-blob-store.js";
const [dir, payloadFile] = process.argv.slice(2);
const payloads = readFileSync(payloadFile, "utf8");
const s = new SqliteBlobStore({ dir });
process.send("ready");
await new Promise((resolve) => process.once("message", resolve));
await Promise.all(JSON.parse(payloads).reverse().map((p) => s.put(Buffer.from(p))));
s.close();
process.disconnect();
`,
  );
  return script;
}
