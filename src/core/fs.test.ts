import { lstatSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileClock, makeDirSync } from "./fs.js";

const root = mkdtempSync(join(tmpdir(), "orion-fs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("makeDirSync", () => {
  it("creates missing parents and accepts an existing directory", () => {
    const d = join(root, "a", "b", "c");
    makeDirSync(d);
    makeDirSync(d);
    expect(statSync(d).isDirectory()).toBe(true);
  });

  it("fails (never loops) where the file system refuses: under /proc, or below a file", () => {
    expect(() => makeDirSync("/proc/orion-no-such-dir/x")).toThrow(/ENOENT/);
    writeFileSync(join(root, "file"), "");
    expect(() => makeDirSync(join(root, "file", "sub"))).toThrow(/ENOTDIR|EEXIST/);
  });
});

describe("FileClock", () => {
  it("reads the time a change is stamped with, never going back, and leaves no file behind", () => {
    const dir = mkdtempSync(join(root, "clock-"));
    const clock = new FileClock(dir);
    const first = clock.nowNs();
    expect(first).toBeDefined();
    writeFileSync(join(dir, "later"), "x");
    const made = lstatSync(join(dir, "later"), { bigint: true }).ctimeNs;
    const second = clock.nowNs()!;
    expect(made >= first!).toBe(true);
    expect(second >= made).toBe(true);
    expect(readdirSync(dir)).toEqual(["later"]);
    clock.close();
  });

  it("says undefined where it cannot read the clock", () => {
    const clock = new FileClock(join(root, "no-such-dir"));
    expect(clock.nowNs()).toBeUndefined();
    clock.close();
  });
});
