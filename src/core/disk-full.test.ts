// Tests for recognising a full disk however it is reported, and the one line that names the store.
import { describe, expect, it } from "vitest";
import { asDiskFull, diskFullLine, DiskFullError, formatBytes, isDiskFull } from "./disk-full.js";
import { ExitCode, OrionError } from "./errors.js";

const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", path: "/c/cas/tmp/x" });
const sqliteFull = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });

describe("isDiskFull", () => {
  it("knows ENOSPC, EDQUOT and SQLITE_FULL, in a cause chain and as text, and nothing else", () => {
    expect(isDiskFull(enospc)).toBe(true);
    expect(isDiskFull(Object.assign(new Error("quota"), { code: "EDQUOT" }))).toBe(true);
    expect(isDiskFull(sqliteFull)).toBe(true);
    expect(isDiskFull(new OrionError("cannot open the stat cache", { cause: sqliteFull }))).toBe(true);
    expect(isDiskFull("no space left for the blob store in /c/cas: it needs at least 1 KiB more")).toBe(true);
    expect(isDiskFull(Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }))).toBe(false);
    expect(isDiskFull("exit code 1")).toBe(false);
    expect(isDiskFull(undefined)).toBe(false);
  });
});

describe("DiskFullError", () => {
  it("is an infrastructure failure (exit 3) naming the store, its folder and what it needs", () => {
    const e = asDiskFull(enospc, "the blob store", "/c/cas", 3 * 1024 * 1024) as DiskFullError;
    expect(e).toBeInstanceOf(DiskFullError);
    expect(e.exitCode).toBe(ExitCode.INFRASTRUCTURE);
    expect(e.message).toMatch(/^no space left for the blob store in \/c\/cas: it needs at least 3\.0 MiB more/);
    // A caller that knows more of the write still to come raises the figure, never lowers it.
    expect(e.needing(5 * 1024 * 1024).message).toMatch(/at least 5\.0 MiB more/);
    expect(e.needing(10).needBytes).toBe(3 * 1024 * 1024);
  });

  it("leaves other errors as they are", () => {
    const other = new Error("EIO");
    expect(asDiskFull(other, "the blob store", "/c/cas")).toBe(other);
  });
});

describe("diskFullLine", () => {
  it("keeps a message that names its store, and names the folder of a bare system error", () => {
    expect(diskFullLine("no space left for the blob store in /h/cas: it needs more than the 0 B free", "the client cache", "/c")).toBe(
      "no space left for the blob store in /h/cas: it needs more than the 0 B free",
    );
    expect(diskFullLine(enospc, "the client cache", "/c")).toMatch(/^no space left for the client cache in \/c\/cas\/tmp: .*\(ENOSPC: no space left on device, write\)$/);
    expect(diskFullLine(sqliteFull, "the client cache", "/c")).toMatch(/^no space left for the client cache in \/c: /);
  });
});

describe("formatBytes", () => {
  it("prints bytes, then binary units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(40 * 1024 * 1024)).toBe("40 MiB");
  });
});
