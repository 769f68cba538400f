// Tests for the compile-cache protocol over a tiny in-memory file view, with a real SQLite action cache and blob store.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Digest, digestOf } from "../core/digest.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { SqliteActionCache } from "./action-cache.js";
import {
  type CompileCacheOptions,
  type CompileKey,
  compileKey,
  compileManifest,
  compileProbes,
  lookupCompiled,
  readCompileInputs,
  recordCompiled,
} from "./compile-cache.js";
import { parseCompileArgs } from "../compile/index.js";
import { CHANGING, type FileView, type ReadDigest } from "./file-view.js";
import { ABSENT_HEADER, compileLevel1Key, keyWorkingDir, normalizeArgv } from "./keys.js";

/** Files by key path (relative to the compile's cwd, or absolute), in memory; `changing` ones read as CHANGING at record time. */
class MemoryView implements FileView {
  readonly files: Map<string, string>;
  readonly changing = new Set<string>();
  constructor(files: Record<string, string>) {
    this.files = new Map(Object.entries(files));
  }
  keyPath(spelled: string): string {
    const n = posix.normalize(spelled);
    return n === "" ? "." : n;
  }
  digestOf(keyPath: string): Digest | undefined {
    const body = this.files.get(keyPath);
    return body === undefined ? undefined : digestOf(body);
  }
  readDigestOf(keyPath: string): ReadDigest {
    return this.changing.has(keyPath) ? CHANGING : this.digestOf(keyPath);
  }
  exists(keyPath: string): boolean {
    return this.files.has(keyPath);
  }
}

const TOOLCHAIN = "tc";
const OUT = "object bytes";
const ALL: CompileCacheOptions = { probeOutside: true };

let dir: string;
let store: BlobStore;
let cache: SqliteActionCache;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "orion-compile-cache-"));
  store = createBlobStore({ dir: join(dir, "cas") });
  cache = new SqliteActionCache(join(dir, "ac.db"));
});

afterEach(() => {
  cache.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function project(): MemoryView {
  return new MemoryView({ "src/a.c": '#include "a.h"\n', "inc/a.h": "#define A 1\n", "pre.h": "#define P 1\n", "/opt/x/x.h": "x\n" });
}

async function keyOf(view: FileView, argv: string[]): Promise<CompileKey | undefined> {
  const args = parseCompileArgs(argv);
  const inputs = await readCompileInputs(view, args);
  if (!inputs) return undefined;
  return compileKey(view, { toolchain: TOOLCHAIN, argv, args, cwd: { key: ".", abs: "/p" }, env: [] }, inputs);
}

const ARGV = ["gcc", "-Iinc", "-I/opt/x", "-c", "src/a.c", "-o", "a.o"];

function result(exitCode = 0): ActionResult {
  return ActionResult.fromPartial({ exitCode, outputFiles: [{ path: "a.o", digest: digestOf(OUT), isExecutable: false }] });
}

describe("compile-cache protocol: keys", () => {
  it("makes the level-1 key compileLevel1Key makes from the same inputs, with the sources' dirs first among the search dirs", async () => {
    const view = project();
    const argv = ["gcc", "-include", "pre.h", "-iquote", "q", "-Iinc", "-isystem", "/opt/x", "-c", "./src/a.c", "-o", "a.o"];
    const key = (await keyOf(view, argv))!;
    const args = parseCompileArgs(argv);
    expect(key.level1).toBe(
      compileLevel1Key({
        toolchain: TOOLCHAIN,
        argv: normalizeArgv(argv, { digest: TOOLCHAIN }),
        workingDir: keyWorkingDir(args, ".", "/p"),
        env: [],
        sourceDigest: digestOf('#include "a.h"\n'),
        forcedIncludeDigests: [digestOf("#define P 1\n")],
      }),
    );
    expect(key.sources).toEqual([{ path: "src/a.c", digest: digestOf('#include "a.h"\n') }]);
    expect(key.searchDirs).toEqual(["src", "q", "inc", "/opt/x"]);
  });

  it("keys several sources (-MM a.c b.c) by the digest of their digests, in argv order", async () => {
    const view = new MemoryView({ "a.c": "a", "b.c": "b" });
    const argv = ["gcc", "-MM", "a.c", "b.c"];
    const ab = (await keyOf(view, argv))!;
    const sum = (x: string, y: string): Digest => digestOf(Buffer.from([digestOf(x), digestOf(y)].map((d) => `${d.hash}/${d.sizeBytes}`).join("\n")));
    const sourceDigest = sum("a", "b");
    expect(ab.level1).toBe(compileLevel1Key({ toolchain: TOOLCHAIN, argv: normalizeArgv(argv, { digest: TOOLCHAIN }), workingDir: ".", env: [], sourceDigest, forcedIncludeDigests: [] }));
    expect(ab.level1).not.toBe((await keyOf(view, ["gcc", "-MM", "b.c", "a.c"]))!.level1);
    expect(ab.searchDirs).toEqual(["."]);
  });

  it("has no key when a source or a forced include is not a file", async () => {
    expect(await keyOf(project(), ["gcc", "-c", "src/gone.c", "-o", "a.o"])).toBeUndefined();
    expect(await keyOf(project(), ["gcc", "-include", "gone.h", "-c", "src/a.c", "-o", "a.o"])).toBeUndefined();
  });
});

describe("compile-cache protocol: record and look-up", () => {
  it("finds what it recorded, and misses once a header changes", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    await store.put(Buffer.from(OUT));
    const outcome = await recordCompiled(key, view, cache, ["src/a.c", "inc/a.h", "/opt/x/x.h"], result(), ALL);
    expect(outcome).toEqual({ headers: [{ path: "/opt/x/x.h", digest: digestOf("x\n") }, { path: "inc/a.h", digest: digestOf("#define A 1\n") }] });
    expect((await lookupCompiled(key, view, cache, store, ALL))?.outputFiles[0]?.path).toBe("a.o");

    view.files.set("inc/a.h", "#define A 2\n");
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeUndefined();
  });

  it("is a miss when the result's blobs are gone from the store", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    await recordCompiled(key, view, cache, ["inc/a.h"], result(), ALL);
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeUndefined();
    await store.put(Buffer.from(OUT));
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeDefined();
  });

  it("misses when a new header would shadow a recorded one along the search path", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    await store.put(Buffer.from(OUT));
    await recordCompiled(key, view, cache, ["inc/a.h"], result(), ALL);
    view.files.set("src/a.h", "#define A 3\n"); // the source's own dir comes before -Iinc
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeUndefined();
  });

  it("leaves the sources, the toolchain's headers and repeats out of a manifest", async () => {
    const view = project();
    view.files.set("/usr/include/stdio.h", "s");
    view.files.set("/toolchain/include/stddef.h", "t");
    const key = (await keyOf(view, ARGV))!;
    const deps = ["./src/a.c", "/usr/include/stdio.h", "inc/a.h", "inc/../inc/a.h", "/toolchain/include/stddef.h"];
    expect(await compileManifest(key, view, deps, { ...ALL, systemIncludeDirs: ["/toolchain/include"] })).toEqual({
      headers: [{ path: "inc/a.h", digest: digestOf("#define A 1\n") }],
    });
    // Without the toolchain's dir named, its header is the project's to key.
    expect(await compileManifest(key, view, deps, ALL)).toMatchObject({ headers: [{ path: "/toolchain/include/stddef.h" }, { path: "inc/a.h" }] });
  });

  it("stores nothing when a header is not a file, unless absent headers are recorded (then it matches while absent)", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    await store.put(Buffer.from(OUT));
    expect(await recordCompiled(key, view, cache, ["inc/a.h", "gen.h"], result(), ALL)).toEqual({ notStored: "missing", path: "gen.h" });
    expect(cache.stats()).toEqual({ results: 0, manifests: 0 });

    const outcome = await recordCompiled(key, view, cache, ["inc/a.h", "gen.h"], result(), { ...ALL, absentHeaders: true });
    expect(outcome).toMatchObject({ headers: [{ path: "gen.h", digest: ABSENT_HEADER }, { path: "inc/a.h" }] });
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeDefined();
    view.files.set("gen.h", "now here");
    expect(await lookupCompiled(key, view, cache, store, ALL)).toBeUndefined();
  });

  it("stores nothing when a header changed while the compile read it, and never makes the result", async () => {
    const view = project();
    view.changing.add("inc/a.h");
    const key = (await keyOf(view, ARGV))!;
    let made = false;
    const make = async (): Promise<ActionResult> => ((made = true), result());
    expect(await recordCompiled(key, view, cache, ["inc/a.h"], make, ALL)).toEqual({ notStored: CHANGING, path: "inc/a.h" });
    expect(made).toBe(false);
    expect(cache.stats()).toEqual({ results: 0, manifests: 0 });
  });

  it("stores a failed result only when told its failure is reproducible", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    await store.put(Buffer.from(OUT));
    expect(await recordCompiled(key, view, cache, ["inc/a.h"], result(1), ALL)).toEqual({ notStored: "failed" });
    expect(cache.stats()).toEqual({ results: 0, manifests: 0 });
    await recordCompiled(key, view, cache, ["inc/a.h"], result(1), { ...ALL, storeFailure: true });
    expect(cache.stats()).toEqual({ results: 1, manifests: 1 });
    expect((await lookupCompiled(key, view, cache, store, ALL))?.exitCode).toBe(1);
  });
});

describe("compile-cache protocol: shadow probes", () => {
  it("probes absolute paths only when the options say so", async () => {
    const view = project();
    view.files.set("/opt/x/a.h", "shadow");
    const key = (await keyOf(view, ARGV))!;
    const headers = ["inc/a.h", "/opt/x/x.h"];
    expect(compileProbes(key, view, headers, { probeOutside: true })).toEqual(["/opt/x/a.h", "/opt/x/x.h", "inc/a.h"]);
    expect(compileProbes(key, view, headers, { probeOutside: false })).toEqual(["inc/a.h"]);
  });

  it("asks the memo, under one key per search path and header list, with the existence check it hands over", async () => {
    const view = project();
    const key = (await keyOf(view, ARGV))!;
    const asked: string[] = [];
    const memo: CompileCacheOptions["probeMemo"] = (k, compute) => {
      asked.push(k);
      return compute((p) => p === "inc/a.h");
    };
    expect(compileProbes(key, view, ["inc/a.h"], { probeOutside: true, probeMemo: memo })).toEqual(["inc/a.h"]);
    expect(asked).toEqual(["src\0inc\0/opt/x\u0001inc/a.h"]);
  });
});
