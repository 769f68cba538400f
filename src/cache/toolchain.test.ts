// Tests for toolchain detection against the real gcc installed here.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OrionError } from "../core/errors.js";
import { clearToolchainMemo, detectToolchain, parseVerboseOutput, toolchainMemoFiles } from "./toolchain.js";

describe("detectToolchain", () => {
  it("describes /usr/bin/gcc with a stable digest", async () => {
    clearToolchainMemo();
    const a = await detectToolchain("/usr/bin/gcc");
    expect(a.name).toBe("gcc");
    expect(a.path).toMatch(/^\/.*gcc/);
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(a.version).toMatch(/^\d+\.\d+/);
    expect(a.machine).toMatch(/linux/);
    expect(a.systemIncludeDirs).toContain("/usr/include");
    expect(a.programs.map(([n]) => n)).toEqual(expect.arrayContaining(["cc1", "as", "collect2", "ld"]));
    expect(a.librarySearchDirs.length).toBeGreaterThan(0);
    clearToolchainMemo();
    const b = await detectToolchain("/usr/bin/gcc");
    expect(b).toEqual(a);
    // Found on PATH by name: the same toolchain.
    expect((await detectToolchain("gcc")).digest).toBe(a.digest);
  });

  it("does not depend on CPATH or the locale", async () => {
    clearToolchainMemo();
    const a = await detectToolchain("/usr/bin/gcc", { env: { PATH: process.env.PATH } });
    clearToolchainMemo();
    const b = await detectToolchain("/usr/bin/gcc", { env: { PATH: process.env.PATH, CPATH: "/tmp", LANG: "de_DE.UTF-8" } });
    expect(b.digest).toBe(a.digest);
  });

  it("tells g++ from gcc", async () => {
    const gcc = await detectToolchain("/usr/bin/gcc");
    const gxx = await detectToolchain("/usr/bin/g++");
    expect(gxx.digest).not.toBe(gcc.digest);
    expect(gxx.systemIncludeDirs.some((d) => d.includes("c++"))).toBe(true);
  });

  it("remembers detections in a memo file across processes", async () => {
    const memoFile = join(mkdtempSync(join(tmpdir(), "orion-tc-")), "toolchains.json");
    clearToolchainMemo();
    const a = await detectToolchain("/usr/bin/gcc", { memoFile });
    expect(JSON.parse(readFileSync(memoFile, "utf8")).version).toBe(1);
    clearToolchainMemo(); // as a fresh process would be
    const t0 = performance.now();
    const b = await detectToolchain("/usr/bin/gcc", { memoFile });
    expect(performance.now() - t0).toBeLessThan(50);
    expect(b).toEqual(a);

    // The memo is trusted only while every stamp (driver, programs, include dirs) holds.
    const edit = (f: (e: { toolchain: { digest: string }; stamps: [string, number, number][] }) => void): void => {
      const doc = JSON.parse(readFileSync(memoFile, "utf8"));
      for (const e of Object.values(doc.entries)) f(e as never);
      writeFileSync(memoFile, JSON.stringify(doc));
      clearToolchainMemo();
    };
    edit((e) => (e.toolchain.digest = "f".repeat(64)));
    expect((await detectToolchain("/usr/bin/gcc", { memoFile })).digest).toBe("f".repeat(64));
    edit((e) => (e.stamps.find(([p]) => p === "/usr/include")![2] -= 1));
    expect((await detectToolchain("/usr/bin/gcc", { memoFile })).digest).toBe(a.digest);
  });

  it("shares the user's memo between caches, and falls back to the cache's own when the user's cannot be written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orion-tc-"));
    const env = { XDG_CACHE_HOME: join(dir, "xdg") };
    const [user, own] = toolchainMemoFiles(join(dir, "cache-a"), env);
    expect(user).toBe(join(dir, "xdg", "orion", "toolchains.json"));
    expect(own).toBe(join(dir, "cache-a", "toolchains.json"));
    expect(toolchainMemoFiles(join(dir, "xdg", "orion"), env)).toEqual([user]);
    clearToolchainMemo();
    const a = await detectToolchain("/usr/bin/gcc", { memoFile: [user!, own!] });
    expect(Object.keys(JSON.parse(readFileSync(user!, "utf8")).entries)).toHaveLength(1);
    expect(() => readFileSync(own!)).toThrow();
    // A new cache in a fresh process finds the detection in the user's file.
    clearToolchainMemo();
    const doc = JSON.parse(readFileSync(user!, "utf8"));
    for (const e of Object.values(doc.entries)) (e as { toolchain: { digest: string } }).toolchain.digest = "e".repeat(64);
    writeFileSync(user!, JSON.stringify(doc));
    expect((await detectToolchain("/usr/bin/gcc", { memoFile: toolchainMemoFiles(join(dir, "cache-b"), env) })).digest).toBe("e".repeat(64));
    // A user file that cannot be written (its folder is a file): the detection goes to the cache's own.
    const blocked = join(dir, "blocked");
    writeFileSync(blocked, "");
    const [user2, own2] = toolchainMemoFiles(join(dir, "cache-c"), { XDG_CACHE_HOME: blocked });
    clearToolchainMemo();
    expect((await detectToolchain("/usr/bin/gcc", { memoFile: [user2!, own2!] })).digest).toBe(a.digest);
    expect(Object.keys(JSON.parse(readFileSync(own2!, "utf8")).entries)).toHaveLength(1);
  });

  it("throws an OrionError naming a missing or bogus compiler", async () => {
    await expect(detectToolchain("/nonexistent/bin/gcc")).rejects.toThrow(OrionError);
    await expect(detectToolchain("/nonexistent/bin/gcc")).rejects.toThrow(/\/nonexistent\/bin\/gcc/);
    await expect(detectToolchain("no-such-compiler-xyz")).rejects.toThrow(/no-such-compiler-xyz/);
    await expect(detectToolchain("/bin/true")).rejects.toThrow(/true/);
  });
});

describe("parseVerboseOutput", () => {
  it("reads the <...> search list and LIBRARY_PATH", () => {
    const stderr = [
      '#include "..." search starts here:',
      "#include <...> search starts here:",
      " /usr/lib/gcc/x86_64-linux-gnu/12/include",
      " /usr/include",
      "End of search list.",
      "LIBRARY_PATH=/usr/lib/gcc/x86_64-linux-gnu/12/:/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/:/lib/",
    ].join("\n");
    expect(parseVerboseOutput(stderr)).toEqual({
      includeDirs: ["/usr/lib/gcc/x86_64-linux-gnu/12/include", "/usr/include"],
      libraryDirs: ["/usr/lib/gcc/x86_64-linux-gnu/12", "/usr/lib/x86_64-linux-gnu", "/lib"],
    });
  });
});
