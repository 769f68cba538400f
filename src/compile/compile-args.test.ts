// Tests for parseCompileArgs: classification, cacheability and the values keys need.
import { describe, expect, it } from "vitest";
import { parseCompileArgs } from "./compile-args.js";

describe("parseCompileArgs", () => {
  it("parses a typical cacheable compile", () => {
    const a = parseCompileArgs([
      "gcc", "-std=c99", "-pedantic", "-DREDIS_STATIC=", "-I", "../deps/hiredis", "-I../deps/lua/src",
      "-iquote", "q", "-isystem", "/opt/sys", "-isystemjoined", "-O2", "-g", "-ggdb", "-Wall", "-MMD",
      "-o", "server.o", "-c", "server.c",
    ]);
    expect(a).toMatchObject({
      kind: "compile",
      cacheable: true,
      sources: ["server.c"],
      output: "server.o",
      depfile: { path: "server.d", explicit: false },
      includeDirs: ["../deps/hiredis", "../deps/lua/src"],
      iquoteDirs: ["q"],
      isystemDirs: ["/opt/sys", "joined"],
      hasDebugInfo: true,
      debugPrefixMapped: false,
      language: "c",
    });
    expect(a.reason).toBeUndefined();
  });

  it("derives the depfile from -o in a subdirectory, or takes -MF", () => {
    expect(parseCompileArgs(["cc", "-MD", "-c", "a.c", "-o", "out/x.o"]).depfile).toEqual({ path: "out/x.d", explicit: false });
    expect(parseCompileArgs(["cc", "-MD", "-c", "a.c", "-o", "./x.o"]).depfile).toEqual({ path: "x.d", explicit: false });
    expect(parseCompileArgs(["cc", "-MD", "-c", "a.c", "-o", "obj"]).depfile).toEqual({ path: "obj.d", explicit: false });
    expect(parseCompileArgs(["cc", "-MMD", "-MF", "deps/a.d", "-MT", "a.o", "-MP", "-c", "a.c", "-o", "a.o"]).depfile)
      .toEqual({ path: "deps/a.d", explicit: true });
    expect(parseCompileArgs(["cc", "-MD", "-MFdeps/b.d", "-c", "a.c", "-o", "a.o"]).depfile).toEqual({ path: "deps/b.d", explicit: true });
    expect(parseCompileArgs(["cc", "-Wp,-MD,.a.o.d", "-c", "a.c", "-o", "a.o"]).depfile).toEqual({ path: ".a.o.d", explicit: true });
    expect(parseCompileArgs(["cc", "-MF", "x.d", "-c", "a.c", "-o", "a.o"]).depfile).toBeUndefined();
  });

  it("skips option values that look like sources", () => {
    const a = parseCompileArgs(["g++", "-include", "pre.h", "-imacros", "m.h", "-MT", "x.c", "-D", "X=1.c", "-U", "Y",
      "-x", "c++", "-c", "weird.txt", "-o", "w.o", "--param", "max-inline-insns=10", "-Xpreprocessor", "foo.c"]);
    expect(a.sources).toEqual(["weird.txt"]);
    expect(a.forcedIncludes).toEqual(["pre.h", "m.h"]);
    expect(a.language).toBe("c++");
    expect(a.cacheable).toBe(true);
  });

  it("recognises source extensions and languages", () => {
    for (const [src, lang] of [["a.cc", "c++"], ["a.cpp", "c++"], ["a.cxx", "c++"], ["a.C", "c++"], ["a.c++", "c++"],
      ["a.i", "cpp-output"], ["a.ii", "c++-cpp-output"], ["a.s", "assembler"], ["a.S", "assembler-with-cpp"],
      ["a.m", "objective-c"], ["a.mm", "objective-c++"]] as const) {
      const a = parseCompileArgs(["cc", "-c", src, "-o", "a.o"]);
      expect(a.sources, src).toEqual([src]);
      expect(a.language, src).toBe(lang);
    }
    expect(parseCompileArgs(["cc", "-xc", "-c", "gen.inc", "-o", "g.o"])).toMatchObject({ sources: ["gen.inc"], language: "c" });
    expect(parseCompileArgs(["cc", "-x", "c", "a.inc", "-x", "none", "b.o", "-o", "p"])).toMatchObject({ kind: "link", sources: ["a.inc"], inputs: ["b.o"] });
  });

  it("treats -S as a cacheable compile", () => {
    expect(parseCompileArgs(["cc", "-S", "a.c", "-o", "a.s"])).toMatchObject({ kind: "compile", cacheable: true, output: "a.s" });
  });

  it.each([
    [["cc", "-c", "-", "-o", "a.o", "-xc"], /stdin/],
    [["cc", "-E", "a.c", "-o", "a.i"], /-E/],
    [["cc", "--coverage", "-c", "a.c", "-o", "a.o"], /--coverage/],
    [["cc", "-fprofile-arcs", "-c", "a.c", "-o", "a.o"], /profil/],
    [["cc", "-fprofile-generate", "-c", "a.c", "-o", "a.o"], /profile/],
    [["cc", "-fprofile-use=x.gcda", "-c", "a.c", "-o", "a.o"], /profile/],
    [["cc", "-ftest-coverage", "-c", "a.c", "-o", "a.o"], /coverage/],
    [["cc", "-save-temps", "-c", "a.c", "-o", "a.o"], /save-temps/],
    [["cc", "-save-temps=obj", "-c", "a.c", "-o", "a.o"], /save-temps/],
    [["cc", "-gsplit-dwarf", "-c", "a.c", "-o", "a.o"], /dwo/],
    [["cc", "@args.rsp", "-c", "a.c", "-o", "a.o"], /response file/],
    [["cc", "-c", "a.c", "b.c", "-o", "a.o"], /2 sources/],
    [["cc", "-c", "a.c"], /no -o/],
    [["cc", "-c", "-o", "a.o"], /no source/],
    [["cc", "-c", "a.c", "-o"], /without a value/],
  ])("%j is an uncacheable compile", (argv, reason) => {
    const a = parseCompileArgs(argv);
    expect(a.kind).toBe("compile");
    expect(a.cacheable).toBe(false);
    expect(a.reason).toMatch(reason);
  });

  it("a -c/-S compile without -o writes <basename>.o/.s in the cwd: an output only when asked for (orion cc)", () => {
    expect(parseCompileArgs(["cc", "-c", "src/a.c"])).toMatchObject({ cacheable: false, reason: "no -o output" });
    expect(parseCompileArgs(["cc", "-c", "src/a.c"], { implicitOutput: true })).toMatchObject({ cacheable: true, output: "a.o" });
    expect(parseCompileArgs(["cc", "-S", "a.c"], { implicitOutput: true })).toMatchObject({ cacheable: true, output: "a.s" });
    expect(parseCompileArgs(["cc", "-c", "-MD", "src/a.c"], { implicitOutput: true }).depfile).toEqual({ path: "a.d", explicit: false });
    expect(parseCompileArgs(["cc", "-c", "a.c", "b.c"], { implicitOutput: true }).cacheable).toBe(false);
  });

  it("classifies -M/-MM as depgen", () => {
    expect(parseCompileArgs(["cc", "-MM", "a.c", "b.c"])).toMatchObject({ kind: "depgen", cacheable: true, sources: ["a.c", "b.c"], depOutput: undefined });
    expect(parseCompileArgs(["cc", "-M", "-MF", "x.d", "a.c"])).toMatchObject({ kind: "depgen", cacheable: true, depOutput: "x.d" });
    expect(parseCompileArgs(["cc", "-MM", "a.c", "-o", "deps.mk"])).toMatchObject({ kind: "depgen", depOutput: "deps.mk" });
    expect(parseCompileArgs(["cc", "-MM", "-"])).toMatchObject({ kind: "depgen", cacheable: false });
    expect(parseCompileArgs(["cc", "-MM", "-MD", "-c", "a.c"])).toMatchObject({ kind: "depgen", cacheable: false });
    expect(parseCompileArgs(["cc", "-MM"])).toMatchObject({ kind: "depgen", cacheable: false, reason: "no source file" });
  });

  it("classifies links", () => {
    const a = parseCompileArgs(["gcc", "-g", "-rdynamic", "-o", "redis-server", "server.o", "../deps/lua/src/liblua.a",
      "-L", "/opt/lib", "-lm", "-ldl", "-Wl,--as-needed", "-Xlinker", "-zrelro", "-T", "script.ld"]);
    expect(a).toMatchObject({ kind: "link", cacheable: true, output: "redis-server", sources: [], inputs: ["server.o", "../deps/lua/src/liblua.a"] });
    expect(parseCompileArgs(["cc", "main.c", "util.o"])).toMatchObject({ kind: "link", sources: ["main.c"], inputs: ["util.o"] });
  });

  it("classifies other invocations", () => {
    expect(parseCompileArgs(["gcc", "--version"])).toMatchObject({ kind: "other", cacheable: false });
    expect(parseCompileArgs(["gcc", "-dumpmachine"]).kind).toBe("other");
  });

  it("tracks debug info and prefix maps", () => {
    expect(parseCompileArgs(["cc", "-g", "-g0", "-c", "a.c", "-o", "a.o"]).hasDebugInfo).toBe(false);
    expect(parseCompileArgs(["cc", "-g0", "-g3", "-c", "a.c", "-o", "a.o"]).hasDebugInfo).toBe(true);
    expect(parseCompileArgs(["cc", "-gdwarf-4", "-c", "a.c", "-o", "a.o"]).hasDebugInfo).toBe(true);
    expect(parseCompileArgs(["cc", "-O2", "-c", "a.c", "-o", "a.o"]).hasDebugInfo).toBe(false);
    const m = parseCompileArgs(["cc", "-g", "-fdebug-prefix-map=/home/u/proj=.", "-c", "a.c", "-o", "a.o"]);
    expect(m).toMatchObject({ debugPrefixMapped: true, debugPrefixMapFrom: ["/home/u/proj"] });
    expect(parseCompileArgs(["cc", "-g", "-ffile-prefix-map=/src=/x", "-c", "a.c", "-o", "a.o"]).debugPrefixMapped).toBe(true);
    expect(parseCompileArgs(["cc", "-g", "-fmacro-prefix-map=/src=/x", "-c", "a.c", "-o", "a.o"]).debugPrefixMapped).toBe(false);
  });

  it("collects -idirafter and joined -iquote", () => {
    const a = parseCompileArgs(["cc", "-iquoteinc", "-idirafter", "late", "-c", "a.c", "-o", "a.o"]);
    expect(a.iquoteDirs).toEqual(["inc"]);
    expect(a.idirafterDirs).toEqual(["late"]);
  });
});
