// Table tests of the compile model over command lines shaped like Lua's and zlib's Makefiles: compiles (with and without -o), archives, ranlib, links, and the implied outputs and depfiles gcc would write.
import { describe, expect, it } from "vitest";
import { arWritesArchive, parseAr, parseDriver, parseRanlib, slotsOf, withExplicitOutput } from "./index.js";

const words = (line: string) => line.split(" ");

describe("gcc calls shaped like Lua's and zlib's", () => {
  it.each([
    ["gcc -std=gnu99 -O2 -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -c -o lapi.o lapi.c",
      { kind: "compile", sources: ["lapi.c"], sourceIndices: [10], output: { path: "lapi.o", implied: false }, macros: ["-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX"], includeDirs: [] }],
    ["cc -O2 -Wall -DLUA_COMPAT_5_3 -c lapi.c",
      { kind: "compile", sources: ["lapi.c"], output: { path: "lapi.o", implied: true }, macros: ["-DLUA_COMPAT_5_3"] }],
    ["gcc -O3 -D_LARGEFILE64_SOURCE=1 -DHAVE_HIDDEN -I. -c -o adler32.o adler32.c",
      { kind: "compile", sources: ["adler32.c"], output: { path: "adler32.o", implied: false }, includeDirs: ["."], macros: ["-D_LARGEFILE64_SOURCE=1", "-DHAVE_HIDDEN"] }],
    ["gcc -O3 -fPIC -D_LARGEFILE64_SOURCE=1 -DHAVE_HIDDEN -I. -DPIC -c -o objs/adler32.o adler32.c",
      { kind: "compile", sources: ["adler32.c"], output: { path: "objs/adler32.o", implied: false }, macros: ["-D_LARGEFILE64_SOURCE=1", "-DHAVE_HIDDEN", "-DPIC"] }],
    ["gcc -O3 -MMD -MP -I. -c -o objs/crc32.o crc32.c",
      { kind: "compile", output: { path: "objs/crc32.o", implied: false }, depfile: { path: "objs/crc32.d", explicit: false, viaPreprocessor: false } }],
    ["gcc -MD -c sub/lcode.c",
      { kind: "compile", output: { path: "lcode.o", implied: true }, depfile: { path: "lcode.d", explicit: false, viaPreprocessor: false } }],
    ["gcc -S lapi.c", { kind: "compile", output: { path: "lapi.s", implied: true } }],
    ["gcc -E lapi.c", { kind: "preprocess", sources: ["lapi.c"] }],
    ["gcc -MM -MT lapi.o lapi.c", { kind: "depgen", sources: ["lapi.c"] }],
    ["gcc -std=gnu99 -o lua lua.o liblua.a -lm -Wl,-E -ldl",
      { kind: "link", sources: [], inputs: ["lua.o", "liblua.a"], output: { path: "lua", implied: false }, libraries: ["m", "dl"] }],
    ["gcc -shared -Wl,-soname,libz.so.1,--version-script,zlib.map -O3 -fPIC -o libz.so.1.3 adler32.lo crc32.lo -lc",
      { kind: "link", inputs: ["adler32.lo", "crc32.lo"], output: { path: "libz.so.1.3", implied: false }, libraries: ["c"] }],
    ["gcc -O3 -o example example.o -L. libz.a", { kind: "link", inputs: ["example.o", "libz.a"], libraryDirs: ["."] }],
    ["gcc --version", { kind: "other", sources: [], inputs: [] }],
  ] as const)("%s", (line, want) => {
    expect(parseDriver(words(line))).toMatchObject(want);
  });

  it("spells out the implied object, and only that", () => {
    const implied = words("cc -O2 -c lapi.c");
    expect(withExplicitOutput(implied, parseDriver(implied))).toEqual([...implied, "-o", "lapi.o"]);
    const given = words("cc -O2 -c lapi.c -o x.o");
    expect(withExplicitOutput(given, parseDriver(given))).toEqual(given);
    for (const line of ["cc -c a.c b.c", "cc -E a.c", "cc -c -", "cc a.c", "gcc -MM -MT lapi.o lapi.c", "gcc --version"]) expect(parseDriver(words(line)).output, line).toBeUndefined();
  });

  it("knows what makes a result more than its key can name", () => {
    expect(parseDriver(words("gcc --coverage -c a.c -o a.o")).problems).toEqual(["--coverage writes profiling notes"]);
    expect(parseDriver(words("gcc -c @args")).problems).toEqual(["response file @args"]);
    expect(parseDriver(words("gcc -c a.c -o")).problems).toEqual(["-o without a value"]);
  });
});

describe("ar and ranlib calls shaped like Lua's and zlib's", () => {
  it.each([
    ["ar rcs liblua.a lapi.o lcode.o lctype.o", "liblua.a", ["lapi.o", "lcode.o", "lctype.o"], "members"],
    ["ar rc libz.a adler32.o crc32.o", "libz.a", ["adler32.o", "crc32.o"], "members"],
    ["ar -rc libz.a adler32.o", "libz.a", ["adler32.o"], "members"],
    ["ar rcb lcode.o liblua.a lapi.o", "liblua.a", ["lapi.o"], "members"],
    ["ar s liblua.a", "liblua.a", [], "index"],
    ["ar t liblua.a", "liblua.a", [], undefined],
  ] as const)("%s", (line, archive, members, writes) => {
    const call = parseAr(words(line));
    expect(call.archive?.text).toBe(archive);
    expect(call.members.map((w) => w.text)).toEqual(members);
    expect(arWritesArchive(call)).toBe(writes);
  });

  it("reads ranlib's archives, and the places policy checks", () => {
    expect(parseRanlib(words("ranlib libz.a")).archives).toEqual([{ text: "libz.a", index: 1 }]);
    expect(slotsOf(words("ranlib libz.a"), "ranlib")).toEqual([{ slot: { index: 1, start: 0, end: 6, role: "write", option: "archive" } }]);
    expect(slotsOf(words("ar rc libz.a a.o"), "ar")).toEqual([
      { slot: { index: 2, start: 0, end: 6, role: "write", option: "archive" } },
      { slot: { index: 3, start: 0, end: 3, role: "read", option: "member" } },
    ]);
  });
});
