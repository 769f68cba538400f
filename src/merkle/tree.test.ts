// Tests for Merkle trees: pinned digests, REAPI ordering, symlinks, the stat cache on a large tree, upload and load.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore, type BlobStore } from "../cas/index.js";
import {
  CorruptBlobError,
  EMPTY_DIGEST,
  FakeClock,
  OrionError,
  UsageError,
  digestKey,
  digestOf,
  digestOfMessage,
} from "../core/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { StatCache } from "./stat-cache.js";
import { buildTree, hashTree, loadTree, uploadTree, type TreeEntry } from "./tree.js";

let dir: string;
let src: string;
let statCache: StatCache;
let store: BlobStore;

/**
 * Pinned: a change here changes every action key and every context digest ever computed, so it must be deliberate.
 * The tree is a.txt = "hello\n", sub/b.c = "int x;\n", run.sh = "#!/bin/sh\necho hi\n" (executable); the value was
 * cross-checked against a hand-written protobuf encoding of the same Directory messages.
 */
const GOLDEN_ROOT = "57858c661eb621dd8eed5cc86d569f249b9d3acfed64e8b41e19e255920ee42e";

function write(rel: string, content: string, mode = 0o644): void {
  const p = join(src, rel);
  fs.mkdirSync(join(p, ".."), { recursive: true });
  fs.writeFileSync(p, content);
  fs.chmodSync(p, mode);
}

function goldenTree(): void {
  write("a.txt", "hello\n");
  write("sub/b.c", "int x;\n");
  write("run.sh", "#!/bin/sh\necho hi\n", 0o755);
}

const file = (content: string, executable = false): TreeEntry => ({ digest: digestOf(content), executable });

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-merkle-"));
  src = join(dir, "src");
  fs.mkdirSync(src);
  // Files written by the test are "now"; a clock an hour ahead lets the stat cache trust them.
  statCache = new StatCache(join(dir, "stat.db"), { clock: new FakeClock(Date.now() + 3_600_000) });
  store = createBlobStore({ dir: join(dir, "cas") });
});

afterEach(() => {
  statCache.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("buildTree and hashTree", () => {
  it("give the pinned root digest for a fixed tree, the same both ways", async () => {
    goldenTree();
    const hashed = await hashTree(src, { statCache });
    expect(hashed.root.hash).toBe(GOLDEN_ROOT);
    const built = buildTree([
      ["sub/b.c", file("int x;\n")],
      ["run.sh", file("#!/bin/sh\necho hi\n", true)],
      ["a.txt", file("hello\n")],
    ]);
    expect(built.root).toEqual(hashed.root);
    expect(built.dirDigests).toEqual(hashed.dirDigests);
    expect([...hashed.files.keys()].sort()).toEqual(["a.txt", "run.sh", "sub/b.c"]);
    expect(hashed.files.get("run.sh")?.executable).toBe(true);
    const root = hashed.directories.get(digestKey(hashed.root))!;
    expect(root.files.map((f) => f.name)).toEqual(["a.txt", "run.sh"]);
    expect(root.directories).toEqual([{ name: "sub", digest: hashed.dirDigests.get("sub") }]);
    expect(digestOfMessage(Directory, root)).toEqual(hashed.root);
  });

  it("sorts entries by name in UTF-8 byte order, whatever the input order", () => {
    const names = ["b", "B", "a", "_x", "é", "\u{1F600}", "\uFFFD", "a0"];
    const entries = names.map((n, i): [string, TreeEntry] => [n, file(String(i))]);
    const t1 = buildTree(entries);
    const t2 = buildTree([...entries].reverse());
    expect(t2.root).toEqual(t1.root);
    const root = t1.directories.get(digestKey(t1.root))!;
    // U+1F600 is F0 9F 98 80 in UTF-8, after U+FFFD (EF BF BD), though JavaScript's `<` puts it before.
    expect(root.files.map((f) => f.name)).toEqual(["B", "_x", "a", "a0", "b", "é", "\uFFFD", "\u{1F600}"]);
  });

  it("changes the digest when only the executable bit changes", () => {
    const plain = buildTree([["tool", file("x")]]);
    const exec = buildTree([["tool", file("x", true)]]);
    expect(exec.root).not.toEqual(plain.root);
  });

  it("keeps empty directories, and the empty Directory's digest is the empty blob's", async () => {
    fs.mkdirSync(join(src, "empty", "deeper"), { recursive: true });
    const t = await hashTree(src, { statCache });
    expect(t.dirDigests.get("empty/deeper")).toEqual(EMPTY_DIGEST);
    expect(t.dirDigests.has("empty")).toBe(true);
    expect(buildTree([]).root).toEqual(EMPTY_DIGEST);
  });

  it("rejects paths that are not clean relative paths, and a path that is both file and folder", () => {
    for (const bad of ["", "/abs", "a//b", "./a", "a/../b", "a/"]) {
      expect(() => buildTree([[bad, file("x")]]), bad).toThrow(OrionError);
    }
    expect(() => buildTree([["a", file("x")], ["a/b", file("y")]])).toThrow(/both a file and a directory/);
  });

  it("records symlinks as they are, without following them, loops included", async () => {
    write("real.txt", "r");
    fs.symlinkSync("real.txt", join(src, "rel"));
    fs.symlinkSync("../../outside", join(src, "escape"));
    fs.symlinkSync("/etc/passwd", join(src, "abs"));
    fs.symlinkSync("loop", join(src, "loop"));
    fs.mkdirSync(join(src, "d"));
    fs.symlinkSync("..", join(src, "d", "up")); // a directory cycle if it were followed
    const t = await hashTree(src, { statCache });
    expect(Object.fromEntries(t.symlinks)).toEqual({
      rel: "real.txt",
      escape: "../../outside",
      abs: "/etc/passwd",
      loop: "loop",
      "d/up": "..",
    });
    expect([...t.files.keys()]).toEqual(["real.txt"]);
    const root = t.directories.get(digestKey(t.root))!;
    expect(root.symlinks.map((s) => s.name)).toEqual(["abs", "escape", "loop", "rel"]);
    const withoutLinks = buildTree(t.files, { directories: ["d"] });
    expect(withoutLinks.root).not.toEqual(t.root);
  });

  it("skips .git always and whatever exclude says", async () => {
    goldenTree();
    write(".git/HEAD", "ref: refs/heads/main\n");
    write("sub/.git", "gitdir: ../.git/modules/sub\n");
    write("build/out.o", "obj");
    write("notes.tmp", "tmp");
    const t = await hashTree(src, {
      statCache,
      exclude: (rel, isDir) => (isDir && rel === "build") || (!isDir && rel.endsWith(".tmp")),
    });
    expect(t.root.hash).toBe(GOLDEN_ROOT);
  });

  it("names the path it cannot read", async () => {
    const missing = join(dir, "no-such-dir");
    await expect(hashTree(missing, { statCache })).rejects.toThrow(UsageError);
    await expect(hashTree(missing, { statCache })).rejects.toThrow(missing);
  });

  it.skipIf(process.getuid?.() === 0)("fails with exit code 2 on an unreadable file", async () => {
    write("secret", "s", 0o000);
    const err = await hashTree(src, { statCache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toContain(join(src, "secret"));
  });

  it("re-hashes an unchanged 2,000-file tree from the stat cache alone", async () => {
    for (let i = 0; i < 2000; i++) write(`d${i % 20}/sub${i % 3}/f${i}.c`, `int v${i} = ${i};\n`);
    const first = await hashTree(src, { statCache });
    expect([statCache.hits, statCache.misses]).toEqual([0, 2000]);
    statCache.hits = statCache.misses = 0;
    const started = performance.now();
    const second = await hashTree(src, { statCache });
    const ms = performance.now() - started;
    expect([statCache.hits, statCache.misses]).toEqual([2000, 0]);
    expect(second.root).toEqual(first.root);
    expect(ms).toBeLessThan(5000); // generous: a smoke check, not a benchmark
  });

  it("hands back the previous tree while nothing changed, and a new one after any change", async () => {
    goldenTree();
    const first = await hashTree(src, { statCache });
    expect(await hashTree(src, { statCache, previous: first })).toBe(first);
    const changes: [string, () => void][] = [
      ["content", () => write("sub/b.c", "int y;\n")],
      ["executable bit", () => fs.chmodSync(join(src, "a.txt"), 0o755)],
      ["new file", () => write("sub/c.h", "")],
      ["empty folder", () => fs.mkdirSync(join(src, "empty"))],
      ["symlink", () => fs.symlinkSync("a.txt", join(src, "link"))],
      ["removed file", () => fs.rmSync(join(src, "run.sh"))],
    ];
    let previous = first;
    for (const [what, change] of changes) {
      change();
      const next = await hashTree(src, { statCache, previous });
      const fresh = await hashTree(src, { statCache });
      expect(next, what).not.toBe(previous);
      expect(next.root, what).toEqual(fresh.root);
      expect(next.root, what).not.toEqual(previous.root);
      previous = next;
    }
  });
});

describe("uploadTree and loadTree", () => {
  it("upload only what the store lacks", async () => {
    goldenTree();
    write("copy.txt", "hello\n"); // same bytes as a.txt: one blob
    write("empty", "");
    const t = await hashTree(src, { statCache });
    const first = await uploadTree(store, t, src);
    // 4 distinct file blobs (hello, int x, script, empty) + root + sub.
    expect(first.uploadedBlobs).toBe(6);
    expect(first.uploadedBytes).toBe(6 + 7 + 18 + 0 + t.root.sizeBytes + t.dirDigests.get("sub")!.sizeBytes);
    expect(await uploadTree(store, t, src)).toEqual({ uploadedBlobs: 0, uploadedBytes: 0 });

    write("sub/b.c", "int y;\n");
    const t2 = await hashTree(src, { statCache });
    const second = await uploadTree(store, t2, src);
    expect(second.uploadedBlobs).toBe(3); // the new file, sub, root
  });

  it("reads back a tree with an empty folder from a store that never got the empty blob", async () => {
    write("a.txt", "hello\n");
    fs.mkdirSync(join(src, "lib"));
    const t = await hashTree(src, { statCache });
    // The empty folder's Directory is the empty blob: a store (a head's, over gRPC) need not hold it.
    const holds = Object.create(store) as BlobStore;
    holds.findMissing = async (ds) => (await store.findMissing(ds)).filter((d) => d.sizeBytes > 0);
    await uploadTree(holds, t, src);
    expect(await store.findMissing([t.dirDigests.get("lib")!])).toHaveLength(1);
    const loaded = await loadTree(store, t.root);
    expect([...loaded.files.keys()]).toEqual(["a.txt"]);
    expect([...loaded.dirDigests.keys()].sort()).toEqual(["", "lib"]);
  });

  it("refuses a file that changed after it was hashed", async () => {
    write("a.txt", "before");
    const t = await hashTree(src, { statCache });
    write("a.txt", "after!");
    await expect(uploadTree(store, t, src)).rejects.toThrow(/changed after it was hashed/);
    expect(await store.findMissing([t.files.get("a.txt")!.digest])).toHaveLength(1);
  });

  it("round-trip a tree through the store", async () => {
    goldenTree();
    fs.mkdirSync(join(src, "sub", "same"));
    fs.mkdirSync(join(src, "other", "same"), { recursive: true }); // identical subtrees share one Directory
    fs.symlinkSync("../a.txt", join(src, "sub", "link"));
    const t = await hashTree(src, { statCache });
    await uploadTree(store, t, src);
    const loaded = await loadTree(store, t.root);
    expect(loaded.files).toEqual(t.files);
    expect(loaded.symlinks).toEqual(t.symlinks);
    expect(loaded.directories).toEqual(t.directories);
    expect(loaded.dirDigests).toEqual(t.dirDigests);
  });

  it("with a directory cache, read only the directories a later tree changed, giving the same tree", async () => {
    const sources: [string, TreeEntry][] = [
      ["src/a.c", { digest: digestOf("a"), executable: false }],
      ["deps/lua/src/l.c", { digest: digestOf("l"), executable: false }],
      ["deps/lua/doc/x.html", { digest: digestOf("x"), executable: false }],
    ];
    const first = buildTree(sources);
    const next = buildTree([...sources, ["src/.make-settings", { digest: digestOf("STD=c11"), executable: false }]]);
    for (const t of [first, next]) for (const d of t.directories.values()) await store.put(Directory.encode(d).finish());
    let gets = 0;
    const counted = Object.create(store) as BlobStore;
    counted.get = (d) => (gets++, store.get(d));
    const cache = new Map<string, Directory>();
    await loadTree(counted, first.root, { cache });
    expect(gets).toBe(first.directories.size);
    gets = 0;
    const loaded = await loadTree(counted, next.root, { cache });
    expect(gets).toBe(2); // the root and src/
    expect(loaded).toEqual(await loadTree(store, next.root));
  });

  it("fail when a directory is missing or hostile", async () => {
    await expect(loadTree(store, digestOf("not there"))).rejects.toThrow(OrionError);
    const hostile: Directory = {
      files: [{ name: "../../etc/cron.d/x", digest: digestOf("x"), isExecutable: false }],
      directories: [],
      symlinks: [],
    };
    const d = await store.put(Directory.encode(hostile).finish());
    await expect(loadTree(store, d)).rejects.toBeInstanceOf(CorruptBlobError);
    const garbage = await store.put(Buffer.from([0xff, 0xff, 0xff]));
    await expect(loadTree(store, garbage)).rejects.toBeInstanceOf(CorruptBlobError);
  });
});
