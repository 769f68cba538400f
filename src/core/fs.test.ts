import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeDirSync } from "./fs.js";

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
