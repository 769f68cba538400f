// Tests for recognising compiles, archives, links and dependency generation from argv.

import { describe, expect, it } from "vitest";
import { classify } from "./classify.js";

describe("classify", () => {
  it("recognises a compile with -c and -o", () => {
    expect(classify(["gcc", "-O2", "-Ilib", "-c", "lib/add.c", "-o", "lib/add.o"])).toEqual({
      kind: "compile",
      inputs: ["lib/add.c"],
      outputs: ["lib/add.o"],
      cxx: false,
    });
  });

  it.each(["cc", "/usr/bin/gcc", "x86_64-linux-gnu-gcc-12", "clang-15", "clang", "gcc-12.2"])("treats %s as a C compiler", (cc) => {
    expect(classify([cc, "-c", "a.c", "-o", "a.o"]).kind).toBe("compile");
  });

  it.each(["g++", "c++", "clang++", "aarch64-linux-gnu-g++-12"])("treats %s as a C++ compiler", (cxx) => {
    expect(classify([cxx, "-std=c++17", "-c", "a.cpp", "-o", "a.o"])).toMatchObject({ kind: "compile", cxx: true });
  });

  it("names the implicit object when -o is absent", () => {
    expect(classify(["gcc", "-c", "src/net.c"]).outputs).toEqual(["net.o"]);
  });

  it("adds the depfile for -MD/-MMD and the -include files to the inputs", () => {
    expect(classify(["gcc", "-MMD", "-include", "cfg.h", "-c", "a.c", "-o", "obj/a.o"])).toMatchObject({
      inputs: ["a.c", "cfg.h"],
      outputs: ["obj/a.o", "obj/a.d"],
    });
    expect(classify(["gcc", "-MD", "-MF", "deps/a.d", "-c", "a.c", "-o", "a.o"]).outputs).toEqual(["a.o", "deps/a.d"]);
    expect(classify(["gcc", "-MD", "-MFx.d", "-c", "a.c", "-o", "a.o"]).outputs).toEqual(["a.o", "x.d"]);
  });

  it("does not take option values for sources", () => {
    expect(classify(["gcc", "-I", "inc.c", "-D", "X", "-c", "a.c", "-o", "a.o"]).inputs).toEqual(["a.c"]);
  });

  it("treats every operand as a source after -x", () => {
    expect(classify(["gcc", "-x", "c", "-c", "gen.inc", "-o", "gen.o"])).toMatchObject({ kind: "compile", inputs: ["gen.inc"] });
  });

  it("leaves -c with several sources, -E and -S to other", () => {
    expect(classify(["gcc", "-c", "a.c", "b.c"]).kind).toBe("other");
    expect(classify(["gcc", "-E", "a.c", "-o", "a.i"]).kind).toBe("other");
    expect(classify(["gcc", "-S", "a.c", "-o", "a.s"]).kind).toBe("other");
  });

  it("recognises dependency generation", () => {
    expect(classify(["gcc", "-MM", "a.c", "b.c"])).toMatchObject({ kind: "depgen", inputs: ["a.c", "b.c"] });
    expect(classify(["cc", "-M", "-MF", "x.d", "a.c"])).toMatchObject({ kind: "depgen", outputs: ["x.d"] });
  });

  it("recognises a link with objects, archives, shared libraries and existing files", () => {
    const exists = (p: string): boolean => p === "linker.ld";
    expect(
      classify(["gcc", "-o", "app1/app1", "app1/main.o", "lib/libcalc.a", "libz.so.1", "linker.ld", "-Llib", "-lm", "-Wl,--as-needed"], exists),
    ).toEqual({ kind: "link", inputs: ["app1/main.o", "lib/libcalc.a", "libz.so.1", "linker.ld"], outputs: ["app1/app1"], cxx: false });
  });

  it("leaves a link that also compiles sources, or has no -o, to other", () => {
    expect(classify(["gcc", "-o", "app", "main.c", "x.o"]).kind).toBe("other");
    expect(classify(["gcc", "x.o"]).kind).toBe("other");
  });

  it("recognises ar archives", () => {
    expect(classify(["ar", "rcs", "lib/libcalc.a", "lib/add.o", "lib/sub.o"])).toEqual({
      kind: "archive",
      inputs: ["lib/add.o", "lib/sub.o"],
      outputs: ["lib/libcalc.a"],
    });
    expect(classify(["x86_64-linux-gnu-ar", "-qc", "x.a", "a.o"])).toMatchObject({ kind: "archive", outputs: ["x.a"] });
    expect(classify(["gcc-ar", "--plugin", "p.so", "rcs", "x.a", "a.o"])).toMatchObject({ kind: "archive", inputs: ["a.o"] });
    expect(classify(["ar", "rb", "pos.o", "x.a", "a.o"])).toMatchObject({ kind: "archive", inputs: ["a.o"], outputs: ["x.a"] });
  });

  it("marks ranlib and `ar s` as in-place archive updates", () => {
    expect(classify(["ranlib", "lib.a"])).toEqual({ kind: "archive", inputs: ["lib.a"], outputs: ["lib.a"] });
    expect(classify(["ar", "s", "lib.a"])).toEqual({ kind: "archive", inputs: ["lib.a"], outputs: ["lib.a"] });
  });

  it("leaves other ar operations and other programs to other", () => {
    expect(classify(["ar", "t", "lib.a"]).kind).toBe("other");
    expect(classify(["ar", "x", "lib.a"]).kind).toBe("other");
    expect(classify(["echo", "-c", "a.c", "-o", "a.o"]).kind).toBe("other");
    expect(classify(["star", "rcs", "x.a"]).kind).toBe("other");
    expect(classify([]).kind).toBe("other");
  });
});
