// Tests for splitting a driver call that compiles several sources (or compiles and links) into one call per job.
import { describe, expect, it } from "vitest";
import { splitDriverCall } from "./split.js";

const obj = (i: number, s: string) => `/objs/${i}-${s.replace(/\.c$/, ".o")}`;

describe("splitDriverCall", () => {
  it("a -c of several sources without -o: one compile per source, the other sources left out", () => {
    expect(splitDriverCall(["cc", "-O3", "-c", "a.c", "b.c", "-DX", "c.c"], obj)).toEqual({
      kind: "compiles",
      compiles: [
        ["cc", "-O3", "-c", "a.c", "-DX"],
        ["cc", "-O3", "-c", "b.c", "-DX"],
        ["cc", "-O3", "-c", "-DX", "c.c"],
      ],
    });
  });

  it("leaves alone what is one job already, or what splitting could change", () => {
    expect(splitDriverCall(["cc", "-c", "a.c", "-o", "a.o"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-c", "a.c", "b.c"].concat(["-o", "x.o"]), obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-x", "c", "-c", "a.c", "b.c"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-MM", "a.c", "b.c"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-E", "a.c", "b.c"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-c", "-", "a.c"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "@args", "a.c", "b.c"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-o", "app", "a.o", "b.o", "-lm"], obj)).toBeUndefined();
    expect(splitDriverCall(["cc", "-MD", "-o", "app", "a.c"], obj)).toBeUndefined();
  });

  it("a link of sources: each compiled to its object with every option, then linked with the objects in their place", () => {
    expect(splitDriverCall(["cc", "-shared", "-fPIC", "-O2", "a.c", "x.o", "b.c", "-o", "libx.so", "-lm"], obj)).toEqual({
      kind: "compile-and-link",
      compiles: [
        ["cc", "-shared", "-fPIC", "-O2", "-lm", "-c", "a.c", "-o", "/objs/0-a.o"],
        ["cc", "-shared", "-fPIC", "-O2", "-lm", "-c", "b.c", "-o", "/objs/1-b.o"],
      ],
      objects: ["/objs/0-a.o", "/objs/1-b.o"],
      link: ["cc", "-shared", "-fPIC", "-O2", "/objs/0-a.o", "x.o", "/objs/1-b.o", "-o", "libx.so", "-lm"],
    });
    expect(splitDriverCall(["gcc", "main.c"], obj)).toMatchObject({ kind: "compile-and-link", link: ["gcc", "/objs/0-main.o"] });
  });
});
