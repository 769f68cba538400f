// Tests for action keys: golden values, what changes a key and what must not, depfile and -l parsing.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { digestOf } from "../core/digest.js";
import { parseCompileArgs } from "../compile/index.js";
import {
  KEY_ENV_ALLOWLIST,
  KEY_VERSION,
  compileLevel1Key,
  compileLevel2Key,
  keyEnv,
  keyWorkingDir,
  linkKey,
  shadowProbes,
  normalizeArgv,
  parseDepfile,
  resolveLibraries,
  type CompileLevel1Input,
} from "./keys.js";

const TOOLCHAIN = "a".repeat(64);
const ARGV = ["gcc", "-O2", "-DFOO=1", "-Iinc", "-MD", "-c", "src/a.c", "-o", "a.o"];

function level1(over: Partial<CompileLevel1Input> = {}): string {
  return compileLevel1Key({
    toolchain: TOOLCHAIN,
    argv: normalizeArgv(ARGV, { digest: TOOLCHAIN }),
    workingDir: "sub",
    env: keyEnv({ LANG: "C", CPATH: "/x" }),
    sourceDigest: digestOf("int main(void) { return 0; }\n"),
    forcedIncludeDigests: [],
    ...over,
  });
}

const HEADERS = [
  { path: "inc/b.h", digest: digestOf("#define B 2\n") },
  { path: "inc/a.h", digest: digestOf("#define A 1\n") },
];

describe("golden keys", () => {
  // These values pin the key format. If a change here is intended, bump
  // KEY_VERSION (keys.ts) and update them together: a silently changed key
  // either wastes the whole cache or, worse, matches results made under other rules.
  it("KEY_VERSION is 2", () => expect(KEY_VERSION).toBe(2));
  it("compile level 1", () => {
    expect(level1()).toBe("47176a469cb74702dd2c7af9dddddc25620fd7b7a4099316271ac9622379fe8c");
  });
  it("compile level 2", () => {
    expect(compileLevel2Key(level1(), HEADERS)).toBe("e0264f1c7c03676c4f93169c72f104620e7c525efbc2fc3a9f76ac3b25d341b4");
  });
  it("link", () => {
    expect(
      linkKey({
        toolchain: TOOLCHAIN,
        argv: normalizeArgv(["gcc", "-o", "app", "a.o", "-lm"], { digest: TOOLCHAIN }),
        workingDir: ".",
        env: [],
        inputs: [
          { path: "a.o", digest: digestOf("obj") },
          { path: "/usr/lib/x86_64-linux-gnu/libm.so", digest: digestOf("libm") },
        ],
      }),
    ).toBe("440b29d0e5a347d43a2fb159bc7b482d9a5f83d4b29d91d16079e7eb770c308f");
  });
});

describe("what changes a key", () => {
  it("a header edit changes level 2 only", () => {
    const edited = [HEADERS[0]!, { path: "inc/a.h", digest: digestOf("#define A 2\n") }];
    expect(compileLevel2Key(level1(), edited)).not.toBe(compileLevel2Key(level1(), HEADERS));
  });
  it("header order does not matter at level 2", () => {
    expect(compileLevel2Key(level1(), [...HEADERS].reverse())).toBe(compileLevel2Key(level1(), HEADERS));
  });
  it("a new shadowing header changes level 2 through the probes", () => {
    const before = shadowProbes(["inc/a.h"], ["src", "inc"], (p) => p === "inc/a.h");
    const after = shadowProbes(["inc/a.h"], ["src", "inc"], (p) => p === "inc/a.h" || p === "src/a.h");
    expect(before).toEqual(["inc/a.h"]);
    expect(after).toEqual(["inc/a.h", "src/a.h"]);
    expect(compileLevel2Key(level1(), HEADERS, after)).not.toBe(compileLevel2Key(level1(), HEADERS, before));
  });
  it("a -D change changes level 1", () => {
    const argv = ARGV.map((a) => (a === "-DFOO=1" ? "-DFOO=2" : a));
    expect(level1({ argv: normalizeArgv(argv, { digest: TOOLCHAIN }) })).not.toBe(level1());
  });
  it("the source digest and forced includes change level 1", () => {
    expect(level1({ sourceDigest: digestOf("int x;\n") })).not.toBe(level1());
    expect(level1({ forcedIncludeDigests: [digestOf("x")] })).not.toBe(level1());
  });
  it("a different toolchain changes the key, whatever the driver is called", () => {
    const other = "b".repeat(64);
    expect(level1({ toolchain: other, argv: normalizeArgv(ARGV, { digest: other }) })).not.toBe(level1());
    expect(normalizeArgv(["/usr/bin/gcc", "-c", "a.c"], { digest: TOOLCHAIN })).toEqual([`toolchain:${TOOLCHAIN}`, "-c", "a.c"]);
    expect(normalizeArgv(["/opt/bin/gcc", "-c", "a.c"], { digest: TOOLCHAIN })).toEqual(normalizeArgv(["gcc", "-c", "a.c"], { digest: TOOLCHAIN }));
  });
  it("PATH does not change the key, CPATH does", () => {
    expect(level1({ env: keyEnv({ LANG: "C", CPATH: "/x", PATH: "/bin", HOME: "/root" }) })).toBe(level1());
    expect(level1({ env: keyEnv({ LANG: "C", CPATH: "/y" }) })).not.toBe(level1());
    expect(level1({ env: keyEnv({ LANG: "C" }) })).not.toBe(level1());
  });
  it("keyEnv keeps only allowlisted, set variables, sorted", () => {
    expect(keyEnv({ PATH: "/bin", SOURCE_DATE_EPOCH: "1", CPATH: "/i", LC_ALL: undefined, USER: "u" })).toEqual([
      ["CPATH", "/i"],
      ["SOURCE_DATE_EPOCH", "1"],
    ]);
    expect(KEY_ENV_ALLOWLIST).not.toContain("PATH");
  });
  it("the working dir is relative unless -g embeds it", () => {
    const plain = parseCompileArgs(["cc", "-O2", "-c", "a.c", "-o", "a.o"]);
    const debug = parseCompileArgs(["cc", "-g", "-c", "a.c", "-o", "a.o"]);
    const mapped = parseCompileArgs(["cc", "-g", "-fdebug-prefix-map=/home/u/proj=.", "-c", "a.c", "-o", "a.o"]);
    const mappedElsewhere = parseCompileArgs(["cc", "-g", "-fdebug-prefix-map=/other=.", "-c", "a.c", "-o", "a.o"]);
    expect(keyWorkingDir(plain, "src", "/home/u/proj/src")).toBe("src");
    expect(keyWorkingDir(undefined, "src", "/home/u/proj/src")).toBe("src");
    expect(keyWorkingDir(debug, "src", "/home/u/proj/src")).toBe("/home/u/proj/src");
    expect(keyWorkingDir(mapped, "src", "/home/u/proj/src")).toBe("src");
    expect(keyWorkingDir(mappedElsewhere, "src", "/home/u/proj/src")).toBe("/home/u/proj/src");
    expect(level1({ workingDir: keyWorkingDir(debug, "sub", "/a/sub") })).not.toBe(
      level1({ workingDir: keyWorkingDir(debug, "sub", "/b/sub") }),
    );
    expect(level1({ workingDir: keyWorkingDir(plain, "sub", "/a/sub") })).toBe(
      level1({ workingDir: keyWorkingDir(plain, "sub", "/b/sub") }),
    );
  });
  it("link inputs change the link key; input order does not", () => {
    const base = { toolchain: TOOLCHAIN, argv: ["t", "-o", "app", "a.o", "b.o"], workingDir: ".", env: [] as [string, string][] };
    const k = linkKey({ ...base, inputs: [{ path: "a.o", digest: digestOf("a") }, { path: "b.o", digest: digestOf("b") }] });
    expect(linkKey({ ...base, inputs: [{ path: "b.o", digest: digestOf("b") }, { path: "a.o", digest: digestOf("a") }] })).toBe(k);
    expect(linkKey({ ...base, inputs: [{ path: "a.o", digest: digestOf("a2") }, { path: "b.o", digest: digestOf("b") }] })).not.toBe(k);
  });
});

describe("shadowProbes", () => {
  it("looks a header up by its basename and its path below each search dir", () => {
    const files = new Set(["inc/sys/x.h", "lib/sys/x.h", "lib/x.h", "src/a.c"]);
    expect(shadowProbes(["inc/sys/x.h"], ["lib", "inc"], (p) => files.has(p))).toEqual(["inc/sys/x.h", "lib/sys/x.h", "lib/x.h"]);
    // The header's own dir is searched for quoted includes from it.
    expect(shadowProbes(["inc/sys/x.h"], [], (p) => files.has(p))).toEqual(["inc/sys/x.h"]);
    expect(shadowProbes(["top.h"], ["."], (p) => p === "top.h")).toEqual(["top.h"]);
  });
});

describe("parseDepfile", () => {
  it("handles continuations, escaped spaces, $$ and -MP phony rules", () => {
    const text =
      "obj/a.o: src/a.c inc/a.h \\\n" +
      "  inc/with\\ space.h /usr/include/stdio.h \\\n" +
      "  inc/cost$$.h\n" +
      "\n" +
      "inc/a.h:\n" +
      "\n" +
      "inc/with\\ space.h:\n" +
      "inc/cost$$.h:\n";
    expect(parseDepfile(text)).toEqual({
      targets: ["obj/a.o"],
      deps: ["src/a.c", "inc/a.h", "inc/with space.h", "/usr/include/stdio.h", "inc/cost$.h"],
    });
  });
  it("merges several rules for the object and several targets (-MT -MT)", () => {
    const text = "a.o a.d: a.c \\\r\n a.h\na.o: b.h a.h\nother.o: c.h\n";
    expect(parseDepfile(text)).toEqual({ targets: ["a.o", "a.d"], deps: ["a.c", "a.h", "b.h"] });
  });
  it("returns empty lists for an empty file", () => {
    expect(parseDepfile("")).toEqual({ targets: [], deps: [] });
  });
  it("parses a real gcc -MD -MP depfile", async () => {
    const { execa } = await import("execa");
    const dir = mkdtempSync(join(tmpdir(), "orion-dep-"));
    mkdirSync(join(dir, "my inc"));
    writeFileSync(join(dir, "my inc", "h.h"), "#define H 1\n");
    writeFileSync(join(dir, "a.c"), '#include "h.h"\n#include <stddef.h>\nint x = H;\n');
    await execa("gcc", ["-I", "my inc", "-MD", "-MP", "-c", "a.c", "-o", "a.o"], { cwd: dir });
    const { readFileSync } = await import("node:fs");
    const d = parseDepfile(readFileSync(join(dir, "a.d"), "utf8"));
    expect(d.targets).toEqual(["a.o"]);
    expect(d.deps[0]).toBe("a.c");
    expect(d.deps).toContain("my inc/h.h");
    expect(d.deps.some((p) => p.endsWith("/stddef.h"))).toBe(true);
  });
});

describe("resolveLibraries", () => {
  it("searches -L dirs (relative to cwd) then system dirs; .so before .a unless -static", () => {
    const root = mkdtempSync(join(tmpdir(), "orion-libs-"));
    for (const d of ["lib", "sys", "sys2"]) mkdirSync(join(root, d));
    writeFileSync(join(root, "lib", "libfoo.a"), "");
    writeFileSync(join(root, "sys", "libfoo.so"), "");
    writeFileSync(join(root, "sys", "libbar.so"), "");
    writeFileSync(join(root, "sys", "libbar.a"), "");
    writeFileSync(join(root, "sys2", "exact.a"), "");
    const sys = [join(root, "sys"), join(root, "sys2")];
    // libfoo.a in an earlier dir wins over libfoo.so in a later one, as ld searches dir by dir.
    expect(resolveLibraries(["cc", "-o", "x", "a.o", "-Llib", "-lfoo", "-l", "bar", "-lmissing", "-l:exact.a"], root, sys)).toEqual([
      join(root, "lib", "libfoo.a"),
      join(root, "sys", "libbar.so"),
      join(root, "sys2", "exact.a"),
    ]);
    expect(resolveLibraries(["cc", "-static", "-lbar"], root, sys)).toEqual([join(root, "sys", "libbar.a")]);
  });
});
