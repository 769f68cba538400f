import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DirListings } from "./dir-listing.js";

const root = mkdtempSync(join(tmpdir(), "orion-dirlist-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Moves a directory's mtime into the past, as if it had settled long ago. */
function settle(dir: string): void {
  const past = new Date(Date.now() - 60_000);
  utimesSync(dir, past, past);
}

describe("DirListings", () => {
  it("answers like existsSync: files, dirs, absent names, absent and non-directory parents, dangling symlinks", () => {
    const d = join(root, "a");
    mkdirSync(join(d, "sub"), { recursive: true });
    writeFileSync(join(d, "x.h"), "");
    symlinkSync("x.h", join(d, "ok-link"));
    symlinkSync("gone", join(d, "dangling"));
    const s = new DirListings().session();
    expect(s.exists(join(d, "x.h"))).toBe(true);
    expect(s.exists(join(d, "sub"))).toBe(true);
    expect(s.exists(join(d, "y.h"))).toBe(false);
    expect(s.exists(join(d, "nodir", "y.h"))).toBe(false);
    expect(s.exists(join(d, "x.h", "y.h"))).toBe(false);
    expect(s.exists(join(d, "ok-link"))).toBe(true);
    expect(s.exists(join(d, "dangling"))).toBe(false);
    expect(s.exists(join(d, "sub", "..", "x.h"))).toBe(true);
  });

  it("a snapshot stays valid while its directories are unchanged, and not once a probed name appears", () => {
    const d = join(root, "b");
    mkdirSync(join(d, "inc"), { recursive: true });
    writeFileSync(join(d, "inc", "h.h"), "");
    settle(join(d, "inc"));
    settle(d);
    const listings = new DirListings();
    const s = listings.session();
    expect(s.exists(join(d, "inc", "h.h"))).toBe(true);
    expect(s.exists(join(d, "inc", "shadow.h"))).toBe(false);
    expect(s.exists(join(d, "gen", "h.h"))).toBe(false);
    const snap = s.snapshot();
    expect(snap).toBeDefined();
    expect(listings.unchanged(snap!)).toBe(true);

    // An unrelated new file in a probed dir: re-read, every answer still holds.
    writeFileSync(join(d, "inc", "unrelated.o"), "");
    expect(listings.unchanged(snap!)).toBe(true);
    // A probed name appears.
    writeFileSync(join(d, "inc", "shadow.h"), "");
    expect(listings.unchanged(snap!)).toBe(false);
  });

  it("a directory that comes into existence invalidates a snapshot that saw it absent", () => {
    const d = join(root, "c");
    mkdirSync(d, { recursive: true });
    const listings = new DirListings();
    const s = listings.session();
    expect(s.exists(join(d, "gen", "h.h"))).toBe(false);
    const snap = s.snapshot()!;
    expect(listings.unchanged(snap)).toBe(true);
    mkdirSync(join(d, "gen"));
    expect(listings.unchanged(snap)).toBe(false);
  });

  it("a session that asked about a symlink cannot be summed up by its directories", () => {
    const d = join(root, "d");
    mkdirSync(d, { recursive: true });
    symlinkSync("target", join(d, "l"));
    const s = new DirListings().session();
    expect(s.exists(join(d, "l"))).toBe(false);
    expect(s.snapshot()).toBeUndefined();
  });
});
