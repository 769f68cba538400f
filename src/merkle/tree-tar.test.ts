// Tests for a tree's tar stream: a good tree round-trips into another store; entries that escape their
// folder, corrupt bytes and entries the tree does not name are refused, and nothing refused is stored.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { pack, type Header } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore, type BlobStore } from "../cas/index.js";
import { CorruptBlobError, Status, digestOf } from "../core/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { buildTree, loadTree, type TreeEntry } from "./tree.js";
import { extractTreeTar, packTreeTar } from "./tree-tar.js";

let dir: string;
let from: BlobStore;
let to: BlobStore;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-tree-tar-"));
  from = createBlobStore({ dir: join(dir, "from") });
  to = createBlobStore({ dir: join(dir, "to") });
});

afterEach(() => {
  from.close();
  to.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Stores `files` (path → content) and their Directory messages in `from`; returns the root and the file map. */
async function storeTree(files: Record<string, string | Buffer>, executable: string[] = []) {
  const entries = new Map<string, TreeEntry>();
  for (const [path, content] of Object.entries(files)) {
    entries.set(path, { digest: await from.put(Buffer.from(content)), executable: executable.includes(path) });
  }
  const tree = buildTree(entries, { symlinks: [["sub/link", "../a.txt"]] });
  for (const [, message] of tree.directories) await from.put(Directory.encode(message).finish());
  return { root: tree.root, files: entries };
}

async function* chunks(bufs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bufs) yield b;
}

/** A hand-made tar stream (for entries a good packer never writes). */
async function tarOf(entries: [Partial<Header> & { name: string }, Buffer?][]): Promise<Buffer[]> {
  const p = pack();
  const out: Buffer[] = [];
  const collecting = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) out.push(c);
  })();
  for (const [h, data] of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data) p.entry(h, data, done);
      else p.entry(h, done);
    });
  }
  p.finalize();
  await collecting;
  return out;
}

describe("packTreeTar / extractTreeTar", () => {
  it("carries a whole tree into another store in chunks within the limit, repeated bytes as hard links", async () => {
    const big = Buffer.alloc(5000, "z");
    const { root, files } = await storeTree(
      { "a.txt": "hello\n", "sub/b.c": "int x;\n", "sub/deep/c.h": "#define C 1\n", "copy.txt": "hello\n", "run.sh": "#!/bin/sh\n", "big.bin": big },
      ["run.sh"],
    );
    const out: Buffer[] = [];
    for await (const c of packTreeTar(from, root, 1024)) out.push(c);
    expect(out.length).toBeGreaterThan(5);
    expect(Math.max(...out.map((c) => c.length))).toBeLessThanOrEqual(1024);
    const stats = await extractTreeTar(chunks(out), { files: (await loadTree(from, root)).files, store: to });
    expect(stats).toEqual({ files: 5, links: 1, bytes: 6 + 7 + 12 + 10 + 5000 });
    for (const f of files.values()) expect(await to.get(f.digest)).toEqual(await from.get(f.digest));
  });

  it("refuses an entry that escapes its folder, with a clear error, and stores nothing of it", async () => {
    const evil = Buffer.from("owned\n");
    const files = new Map([["ok.txt", { digest: digestOf(evil) }]]);
    const cases: [Partial<Header> & { name: string }, Buffer | undefined, RegExp][] = [
      [{ name: "../evil", type: "file" }, evil, /tar entry "\.\.\/evil" climbs out with "\.\."; refused/],
      [{ name: "sub/../../evil", type: "file" }, evil, /climbs out/],
      [{ name: "/tmp/evil", type: "file" }, evil, /tar entry "\/tmp\/evil" is an absolute path; refused/],
      [{ name: "ok.txt", type: "symlink", linkname: "../../etc/passwd" }, undefined, /is a symlink to "\.\.\/\.\.\/etc\/passwd", outside its folder/],
      [{ name: "ok.txt", type: "symlink", linkname: "/etc/passwd" }, undefined, /outside its folder/],
      [{ name: "ok.txt", type: "link", linkname: "../outside" }, undefined, /climbs out/],
      [{ name: "ok.txt", type: "link", linkname: "/etc/shadow" }, undefined, /absolute path/],
    ];
    for (const [header, data, message] of cases) {
      const err = await extractTreeTar(chunks(await tarOf([[header, data]])), { files, store: to }).catch((e: unknown) => e);
      expect(err, header.name).toMatchObject({ code: Status.PERMISSION_DENIED, message: expect.stringMatching(message) });
    }
    expect(await to.has(digestOf(evil))).toBe(false);
    expect(fs.existsSync(join(dir, "..", "evil"))).toBe(false);
    // An in-tree symlink is fine (the tree, not the tar, makes it).
    const fine = await extractTreeTar(chunks(await tarOf([[{ name: "sub/l", type: "symlink", linkname: "../ok.txt" }]])), { files, store: to });
    expect(fine).toEqual({ files: 0, links: 0, bytes: 0 });
  });

  it("refuses a corrupt entry and does not store it; the verified entries before it stay", async () => {
    const good = Buffer.from("int good;\n");
    const want = Buffer.from("int main;\n");
    const forged = Buffer.from("rm -rf /;\n"); // same length, other bytes
    const files = new Map([
      ["good.c", { digest: digestOf(good) }],
      ["main.c", { digest: digestOf(want) }],
    ]);
    const tar = await tarOf([
      [{ name: "good.c", type: "file" }, good],
      [{ name: "main.c", type: "file" }, forged],
    ]);
    const err = await extractTreeTar(chunks(tar), { files, store: to }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptBlobError);
    expect((err as Error).message).toMatch(/tar entry main\.c does not match its digest .*refused, nothing stored/);
    expect(await to.has(digestOf(good))).toBe(true);
    expect(await to.has(digestOf(want))).toBe(false);
    expect(await to.has(digestOf(forged))).toBe(false);
  });

  it("refuses entries the tree does not name, devices, hard links to other bytes, and a truncated stream", async () => {
    const a = Buffer.from("a\n");
    const files = new Map([
      ["a", { digest: digestOf(a) }],
      ["b", { digest: digestOf("b\n") }],
    ]);
    const refuse = async (tar: Buffer[], message: RegExp) =>
      expect(await extractTreeTar(chunks(tar), { files, store: to }).catch((e: unknown) => e)).toMatchObject({ message: expect.stringMatching(message) });
    await refuse(await tarOf([[{ name: "extra", type: "file" }, a]]), /"extra" is not a file of the tree/);
    await refuse(await tarOf([[{ name: "a", type: "character-device" }]]), /is a character-device: only files, directories and links/);
    await refuse(await tarOf([[{ name: "a", type: "file" }, a], [{ name: "b", type: "link", linkname: "a" }]]), /hard link b -> a does not carry the bytes/);
    await refuse(await tarOf([[{ name: "a", type: "file" }, Buffer.from("a longer\n")]]), /holds 9 bytes, but the tree names/);
    const whole = Buffer.concat(await tarOf([[{ name: "a", type: "file" }, a]]));
    await refuse([whole.subarray(0, 600)], /./);
    expect(await to.has(digestOf("b\n"))).toBe(false);
  });
});
