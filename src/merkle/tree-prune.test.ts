// Tests for pruning files out of a stored Merkle tree: the same digest as building the smaller tree directly, directories
// and symlinks kept, untouched subtrees left as they were, and the memo sparing a second walk.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore, type BlobStore } from "../cas/index.js";
import { digestOf, type Digest } from "../core/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { buildTree, loadTree, type MerkleTree, type TreeEntry } from "./tree.js";
import { pruneTree } from "./tree-prune.js";

let dir: string;
let store: BlobStore;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-prune-"));
  store = createBlobStore({ dir: join(dir, "cas") });
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const file = (content: string, executable = false): TreeEntry => ({ digest: digestOf(content), executable });
const isObject = (name: string) => name.endsWith(".o") || name.endsWith(".a");

async function stored(files: [string, TreeEntry][], symlinks: [string, string][] = []): Promise<MerkleTree> {
  const tree = buildTree(files, { symlinks });
  for (const d of tree.directories.values()) await store.put(Directory.encode(d).finish());
  return tree;
}

/** Counts the store's reads, to see what a memoized prune still walks. */
function counting(inner: BlobStore): { store: BlobStore; gets: () => number } {
  let n = 0;
  const wrapped = Object.create(inner) as BlobStore;
  wrapped.get = (d: Digest) => {
    n++;
    return inner.get(d);
  };
  return { store: wrapped, gets: () => n };
}

describe("pruneTree", () => {
  const sources: [string, TreeEntry][] = [
    ["src/server.c", file("int main;")],
    ["src/server.h", file("#pragma once")],
    ["deps/lua/src/lua.h", file("/* lua */")],
    ["deps/lua/src/lapi.c", file("int lapi;")],
    ["tools/gen.sh", file("#!/bin/sh", true)],
  ];
  const objects: [string, TreeEntry][] = [
    ["src/server.o", file("\x7fELF server")],
    ["deps/lua/src/lapi.o", file("\x7fELF lapi")],
    ["deps/lua/src/liblua.a", file("!<arch> lua")],
    ["deps/jemalloc/lib/libjemalloc.a", file("!<arch> jemalloc")],
  ];

  it("gives the digest of the tree built without the dropped files, keeping emptied directories and symlinks", async () => {
    const links: [string, string][] = [["src/config.h.link", "server.h"]];
    const full = await stored([...sources, ...objects], links);
    const pruned = await pruneTree(store, full.root, isObject);
    // deps/jemalloc/lib held only an archive: it stays, empty, as a working directory must.
    const expected = buildTree(sources, { symlinks: links, directories: ["deps/jemalloc/lib"] });
    expect(pruned).toEqual(expected.root);
    const loaded = await loadTree(store, pruned);
    expect([...loaded.files.keys()].sort()).toEqual(sources.map(([p]) => p).sort());
    expect(loaded.files.get("tools/gen.sh")?.executable).toBe(true);
    expect([...loaded.symlinks]).toEqual(links);
    expect(loaded.dirDigests.has("deps/jemalloc/lib")).toBe(true);
  });

  it("returns the same root, and stores nothing new, when nothing is dropped", async () => {
    const full = await stored(sources);
    const before = store.sizeBytes();
    expect(await pruneTree(store, full.root, isObject)).toEqual(full.root);
    expect(store.sizeBytes()).toBe(before);
  });

  it("keeps the digests of subtrees that drop nothing", async () => {
    const full = await stored([...sources, ...objects]);
    const loaded = await loadTree(store, await pruneTree(store, full.root, isObject));
    expect(loaded.dirDigests.get("tools")).toEqual(full.dirDigests.get("tools"));
    expect(loaded.dirDigests.get("src")).not.toEqual(full.dirDigests.get("src"));
  });

  it("with a memo, walks only the directories a new tree changed", async () => {
    const memo = new Map<string, Digest>();
    const first = await stored([...sources, ...objects]);
    const c = counting(store);
    await pruneTree(c.store, first.root, isObject, memo);
    const walked = c.gets();
    expect(walked).toBe(first.directories.size);
    // A host step rewrote one header: only src and the root are new directories.
    const next = await stored([...sources.filter(([p]) => p !== "src/server.h"), ["src/server.h", file("#pragma once\n#define V 2")], ...objects]);
    const pruned = await pruneTree(c.store, next.root, isObject, memo);
    expect(c.gets() - walked).toBe(2);
    expect(pruned).toEqual(buildTree([...sources.filter(([p]) => p !== "src/server.h"), ["src/server.h", file("#pragma once\n#define V 2")]], { directories: ["deps/jemalloc/lib"] }).root);
  });

  it("fails with NOT_FOUND when a directory is missing from the store", async () => {
    const tree = buildTree(sources);
    await expect(pruneTree(store, tree.root, isObject)).rejects.toMatchObject({ code: 5 });
  });
});
