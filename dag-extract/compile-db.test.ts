// Tests for building a graph from a compile database, on Redis's recorded one and on small hand-written ones.

import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { extractCompileDb } from "./compile-db.js";
import { ExtractError } from "./errors.js";

const REDIS_DB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../shared/data/redis-7.0.15-compile_commands.json");
const temps: string[] = [];

afterAll(async () => {
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "orion-cdb-"));
  temps.push(dir);
  return dir;
}

describe("extractCompileDb", () => {
  it.skipIf(!existsSync(REDIS_DB))(`Redis 7.0.15: 207 compiles, then make (needs ${REDIS_DB})`, async () => {
    const root = await tempDir();
    await writeFile(path.join(root, "Makefile"), "all:\n");
    const g = await extractCompileDb(root, REDIS_DB);
    expect(g.source).toBe("compile_commands");
    const compiles = g.commands.filter((c) => c.kind === "compile" && !c.host);
    expect(compiles).toHaveLength(207);
    expect(compiles.filter((c) => c.label.startsWith("CXX "))).toHaveLength(1);
    expect(compiles.every((c) => c.deps.length === 0)).toBe(true);
    // Bear recorded hiredis without -o: the object lands next to the source, in the entry's directory,
    // and the action names it (a sandboxed compile must say where its object goes).
    expect(compiles[0]).toMatchObject({
      cwd: "deps/linenoise",
      label: "CC deps/linenoise/linenoise.o",
      inputs: ["deps/linenoise/linenoise.c"],
      outputs: ["deps/linenoise/linenoise.o"],
      argv: ["/usr/bin/gcc", "-Wall", "-Os", "-g", "-c", "linenoise.c", "-o", "linenoise.o"],
    });
    expect(new Set(compiles.map((c) => c.outputs[0])).size).toBe(207);
    const make = g.commands.at(-1)!;
    expect(make).toMatchObject({ host: true, argv: ["make"], cwd: "", label: "RUN make" });
    expect(make.deps).toEqual(compiles.map((c) => c.id));
    expect(g.commands).toHaveLength(208);
  });

  it("reads command strings, absolute directories and non-compile entries", async () => {
    const root = await tempDir();
    await writeFile(
      path.join(root, "compile_commands.json"),
      JSON.stringify([
        { directory: path.join(root, "src"), file: "a.c", command: "cc -DMSG='\"hi there\"' -c a.c -o obj/a.o" },
        { directory: ".", file: "b.c", command: "gcc -E b.c > b.i" },
        { directory: "src", file: "c.c", arguments: ["gcc", "-c", "../c.c"] },
      ]),
    );
    await writeFile(path.join(root, "build.ninja"), "");
    const g = await extractCompileDb(root);
    expect(g.commands.map((c) => [c.label, c.host, c.deps])).toEqual([
      ["CC src/obj/a.o", false, []],
      ["RUN gcc -E b.c > b.i", true, ["a1"]],
      ["CC src/c.o", false, ["a2"]],
      ["RUN ninja", true, ["a2", "a3"]],
    ]);
    expect(g.commands[0]!.argv).toEqual(["cc", '-DMSG="hi there"', "-c", "a.c", "-o", "obj/a.o"]);
    expect(g.commands[1]!.argv).toEqual(["/bin/sh", "-c", "gcc -E b.c > b.i"]);
    expect(g.commands[2]!.inputs).toEqual(["c.c"]);
  });

  it("with no Makefile or build.ninja: the compiles alone, and a note that nothing links them", async () => {
    const root = await tempDir();
    await writeFile(path.join(root, "compile_commands.json"), JSON.stringify([{ directory: ".", file: "a.c", arguments: ["cc", "-c", "a.c"] }]));
    const g = await extractCompileDb(root);
    expect(g.commands.map((c) => c.label)).toEqual(["CC a.o"]);
    expect(g.notes).toEqual([`${root} has compile_commands.json but no Makefile or build.ninja: its 1 compiles are built, nothing links them`]);
  });

  it("rejects a file that is not a compile database", async () => {
    const root = await tempDir();
    await writeFile(path.join(root, "compile_commands.json"), JSON.stringify([{ directory: "." }]));
    await expect(extractCompileDb(root)).rejects.toThrow(ExtractError);
    await expect(extractCompileDb(root, "missing.json")).rejects.toThrow(/cannot read compile database/);
  });
});
