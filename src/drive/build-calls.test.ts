import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { namedFiles } from "./build-calls.js";

const dir = mkdtempSync(join(tmpdir(), "orion-named-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("namedFiles", () => {
  it("finds the files a link's options name, not only its operands", () => {
    for (const f of ["zlib.map", "link.ld", "args.rsp", "syms.list", "a.o"]) writeFileSync(join(dir, f), "");
    mkdirSync(join(dir, "inc"));
    const argv = ["gcc", "-shared", "-Wl,--version-script,zlib.map", "-Tlink.ld", "@args.rsp", "-Wl,--dynamic-list=syms.list", "-Iinc", "a.o", "-o", "libz.so", "-lm", "inc"];
    expect(namedFiles({ argv, cwd: dir }).sort()).toEqual(["a.o", "args.rsp", "link.ld", "syms.list", "zlib.map"].map((f) => join(dir, f)));
  });
});
