// Tests for the depfile rewriter: gcc's quoting and its column-72 wrapping, reproduced after paths are mapped.
import { describe, expect, it } from "vitest";
import { mungeMakePath, rewriteDepfile } from "./depfile.js";

const map = (from: string, to: string) => (s: string) => s.replaceAll(from, to);

describe("mungeMakePath", () => {
  it("escapes blanks, # and $ as libcpp does", () => {
    expect(mungeMakePath("a b")).toBe("a\\ b");
    expect(mungeMakePath("a\\ b")).toBe("a\\\\\\ b");
    expect(mungeMakePath("x#1$y")).toBe("x\\#1$$y");
    expect(mungeMakePath("/plain/path.h")).toBe("/plain/path.h");
  });
});

describe("rewriteDepfile", () => {
  it("maps the target and re-wraps at gcc's column", () => {
    const sandbox = "/very/long/sandbox/path/that/moves/the/line/breaks/0123456789";
    const text =
      `${sandbox}/x.o: x.c /usr/include/stdio.h \\\n` +
      ` /usr/include/x86_64-linux-gnu/bits/libc-header-start.h a.h \\\n` +
      ` /ctx/a/long/sandbox/prefix/inc/b.h\n`;
    const out = rewriteDepfile(text, (s) => map(`${sandbox}/`, "")(map("/ctx/a/long/sandbox/prefix", "/p")(s)));
    // Laid out by hand with make_write's rule: wrap before a name that would pass column 72 (here b.h now fits at 69).
    expect(out).toBe(
      "x.o: x.c /usr/include/stdio.h \\\n" +
        " /usr/include/x86_64-linux-gnu/bits/libc-header-start.h a.h /p/inc/b.h\n",
    );
  });

  it("drops a leading ./ from targets, as apply_vpath does", () => {
    expect(rewriteDepfile("/sb/./o/y.o: y.c\n", map("/sb/", ""))).toBe("o/y.o: y.c\n");
  });

  it("keeps -MP phony targets and maps them", () => {
    const out = rewriteDepfile("/sb/x.o: x.c /ctx/a.h\n\n/ctx/a.h:\n", (s) => map("/sb/", "")(map("/ctx", "/p")(s)));
    expect(out).toBe("x.o: x.c /p/a.h\n\n/p/a.h:\n");
  });

  it("keeps escaped blanks inside one name", () => {
    const out = rewriteDepfile("/sb/x.o: my\\ file.c a.h\n", map("/sb/", ""));
    expect(out).toBe("x.o: my\\ file.c a.h\n");
  });
});
