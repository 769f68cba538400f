// Unit tests for which compiler calls `orion cc` caches, and for finding the real compiler past masquerade links.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { classifyCall } from "./classify.js";
import { findCompiler } from "./compiler.js";

const cwd = "/work/proj";
const cacheable = (argv: string[], env: Record<string, string> = {}) => classifyCall(argv, cwd, env).cacheable;

describe("classifyCall", () => {
  it("caches a single-source compile to an object, with the usual flags and depfile options", () => {
    expect(cacheable(["gcc", "-O2", "-g", "-Wall", "-Iinc", "-DX=1", "-std=c11", "-c", "a.c", "-o", "a.o"])).toBe(true);
    expect(cacheable(["gcc", "-include", "cfg.h", "-isystem", "sys", "-MD", "-MF", "a.d", "-MT", "a.o", "-c", "a.c", "-o", "a.o"])).toBe(true);
    expect(cacheable(["g++", "-x", "c++", "-c", "a.inl", "-o", "a.o"])).toBe(true);
    expect(cacheable(["gcc", "-MMD", "-MP", "-c", "a.c", "-o", "a.o"])).toBe(true);
    // Dependency generation, over one source or many, to stdout or a file.
    expect(cacheable(["gcc", "-MM", "-Iinc", "a.c", "b.c"])).toBe(true);
    expect(cacheable(["gcc", "-M", "-MF", "deps.mk", "a.c"])).toBe(true);
    // No -o: gcc writes a.o in the cwd, and so does a hit.
    expect(cacheable(["gcc", "-c", "src/a.c"])).toBe(true);
  });

  it("runs everything else as the compiler would", () => {
    const reasons: [string[], RegExp][] = [
      [["gcc", "-o", "app", "a.o", "b.o"], /link/],
      [["gcc", "-E", "a.c"], /-E/],
      [["gcc", "-x", "c", "-", "-o", "x"], /stdin/],
      [["gcc", "-x", "c", "-c", "-", "-o", "x.o"], /stdin/],
      [["gcc", "-MM", "-"], /stdin/],
      [["gcc", "-MM", "-isystem", "sys", "a.c"], /-MM hides/],
      [["gcc", "-M", "-MG", "a.c"], /-MG/],
      [["gcc", "-c", "a.c", "b.c"], /2 sources/],
      [["gcc", "-c", "a.c", "b.c", "-o", "x.o"], /2 sources/],
      [["gcc", "-c", "a.c", "-o", "/dev/null"], /not a regular file/],
      [["gcc", "-MD", "-MF", "/dev/null", "-c", "a.c", "-o", "a.o"], /depfile/],
      [["gcc", "-B/opt/bin", "-c", "a.c", "-o", "a.o"], /programs/],
      [["gcc", "-fplugin=x.so", "-c", "a.c", "-o", "a.o"], /plugin/],
      [["gcc", "-MMD", "-isystem", "sys", "-c", "a.c", "-o", "a.o"], /-MMD/],
      [["gcc", "--coverage", "-c", "a.c", "-o", "a.o"], /profil/],
      [["gcc", "@args.rsp"], /response file/],
      [["gcc", "--version"], /neither/],
    ];
    for (const [argv, why] of reasons) {
      const c = classifyCall(argv, cwd, {});
      expect(c.cacheable, argv.join(" ")).toBe(false);
      expect(c.reason, argv.join(" ")).toMatch(why);
    }
    expect(cacheable(["gcc", "-c", "a.c", "-o", "a.o"], { DEPENDENCIES_OUTPUT: "x.d" })).toBe(false);
  });
});

describe("findCompiler", () => {
  const root = mkdtempSync(join(tmpdir(), "orion-cc-find-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const exe = (p: string) => {
    writeFileSync(p, "#!/bin/sh\n");
    chmodSync(p, 0o755);
  };
  const self = join(root, "orion-home", "orion");
  const masq = join(root, "masq");
  const real = join(root, "real");
  mkdirSync(join(root, "orion-home"));
  mkdirSync(masq);
  mkdirSync(real);
  exe(self);
  exe(join(real, "gcc"));
  symlinkSync(self, join(masq, "gcc"));

  it("skips a PATH entry that is Orion itself and finds the real compiler further down", () => {
    const env = { PATH: `${masq}:${real}` };
    expect(findCompiler("gcc", root, env, { selfPaths: [self] })).toBe(join(real, "gcc"));
    // By name alone too: a link into something called orion is never a compiler.
    expect(findCompiler("gcc", root, env, { selfPaths: [] })).toBe(join(real, "gcc"));
    expect(findCompiler(join(masq, "gcc"), root, env, { selfPaths: [self] })).toBe(join(real, "gcc"));
    expect(findCompiler("gcc", root, { PATH: masq }, { selfPaths: [self] })).toBeUndefined();
    expect(findCompiler("no-such-cc", root, env, { selfPaths: [self] })).toBeUndefined();
  });

  it("skips the masquerade dir the launcher names", () => {
    const other = join(root, "other");
    mkdirSync(other);
    exe(join(other, "gcc"));
    expect(findCompiler("gcc", root, { PATH: `${other}:${real}` }, { selfPaths: [self], skipDirs: [other] })).toBe(join(real, "gcc"));
  });
});
