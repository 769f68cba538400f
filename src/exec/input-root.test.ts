// Tests for the input-root checks (symlinks that escape, directly or through other symlinks, are refused) and for
// patching one materialized tree into another.
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createBlobStore } from "../cas/index.js";
import { checkSymlinks, forEachLimit, type InputTree, materializeTree, patchTree, removeTree } from "./input-root.js";
import { treeListing } from "./test-helpers.js";

const links = (...pairs: [string, string][]) => ({ symlinks: pairs.map(([path, target]) => ({ path, target })) });

describe("checkSymlinks", () => {
  it("accepts links that stay inside the root", () => {
    expect(() => checkSymlinks(links(["a/b", "../c"], ["lib/libx.so", "libx.so.1"], ["up", "a/.."]))).not.toThrow();
  });

  it("refuses absolute and lexically escaping links", () => {
    expect(() => checkSymlinks(links(["etc", "/etc"]))).toThrow(/escapes the input root/);
    expect(() => checkSymlinks(links(["a/b", "../../x"]))).toThrow(/escapes/);
    expect(() => checkSymlinks(links(["a", ""]))).toThrow(/escapes/);
  });

  it("refuses a link that escapes only through another link", () => {
    // a/up -> .. is the root, so b -> a/up/.. is the root's parent, though lexically it is just "a".
    expect(() => checkSymlinks(links(["a/up", ".."], ["b", "a/up/.."]))).toThrow(/b -> a\/up\/\.\. escapes/);
  });

  it("refuses symlink loops instead of spinning", () => {
    expect(() => checkSymlinks(links(["x", "y/z"], ["y", "x"]))).toThrow(/escapes/);
  });
});

describe("forEachLimit", () => {
  it("never runs more than the limit at once", async () => {
    let running = 0;
    let peak = 0;
    await forEachLimit([...Array(50).keys()], 4, async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
    });
    expect(peak).toBe(4);
  });
});

describe("patchTree", () => {
  it("turns a file into a folder, a folder into a file and a symlink into a file, as a fresh materialization has them", async () => {
    const tmp = await fsp.mkdtemp(join(tmpdir(), "orion-patch-"));
    const store = createBlobStore({ dir: join(tmp, "cas") });
    try {
      const file = async (path: string, text: string, executable = false) => ({ path, digest: await store.put(Buffer.from(text)), executable });
      const from: InputTree = {
        dirs: ["d", "d/e", "keep"],
        files: [await file("a", "a was a file\n"), await file("d/e/f", "deep\n"), await file("keep/k", "same\n"), await file("x", "exec\n", true)],
        symlinks: [{ path: "s", target: "keep/k" }],
      };
      const to: InputTree = {
        dirs: ["a", "keep"],
        files: [await file("a/b", "a is a folder now\n"), await file("d", "d is a file now\n"), await file("keep/k", "same\n"), await file("s", "s is a file\n"), await file("x", "exec\n")],
        symlinks: [],
      };
      const patched = join(tmp, "patched");
      await materializeTree(store, from, patched, { readOnly: true });
      const linked = await patchTree(store, from, to, patched);
      expect(linked.sort()).toEqual(["a/b", "d", "s", "x"]);
      const fresh = join(tmp, "fresh");
      await materializeTree(store, to, fresh, { readOnly: true });
      expect(await treeListing(patched)).toEqual(await treeListing(fresh));
      expect((await treeListing(patched))["x"]).toBe("exec\n (444)");
      await removeTree(patched);
      await removeTree(fresh);
    } finally {
      store.close();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
