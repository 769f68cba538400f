// Tests for the input-root checks: symlinks that escape, directly or through other symlinks, are refused.
import { describe, expect, it } from "vitest";
import { checkSymlinks, forEachLimit } from "./input-root.js";

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
