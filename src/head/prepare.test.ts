// Tests for turning a graph action into its cache keys: a compile's two levels, recorded from one run's depfile and found again by the next.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { digestOf, isInfrastructureError } from "../core/index.js";
import { ArgvRefusedError } from "../exec/argv-policy.js";
import { buildTree, loadTree } from "../merkle/index.js";
import { Directory } from "../gen/orion/v1/remote_execution.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { SqliteActionCache } from "../cache/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import { ContextIndex } from "./context-index.js";
import { type BuildView, prepareAction, recordResult } from "./prepare.js";

let dir: string;
let store: BlobStore;
let cache: SqliteActionCache;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-prepare-"));
  store = createBlobStore({ dir: join(dir, "cas") });
  cache = new SqliteActionCache(join(dir, "ac.db"));
});

afterEach(() => {
  cache.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const PROJECT = "/proj";

/** A fresh view of the same tree, as a fresh extract at the same path gives: deps/hiredis/{net.c,net.h}. */
function view(): BuildView {
  const files = new Map([
    ["deps/hiredis/net.c", { digest: digestOf('#include "net.h"\nint n(void) { return N; }\n'), executable: false }],
    ["deps/hiredis/net.h", { digest: digestOf("#define N 1\n"), executable: false }],
  ]);
  return { projectRoot: PROJECT, context: new ContextIndex(digestOf("root"), files), produced: new Map(), noCache: false };
}

function compile(argv: string[]): GraphAction {
  return {
    id: "a1",
    kind: "compile",
    label: "CC deps/hiredis/net.o",
    arguments: argv,
    cwd: "deps/hiredis",
    inputs: ["deps/hiredis/net.c"],
    outputs: ["deps/hiredis/net.o"],
    deps: [],
    host: false,
    toolchain: "tc-digest",
    environmentVariables: [],
    shell: argv.join(" "),
  };
}

async function result(): Promise<ActionResult> {
  const object = await store.put(Buffer.from("\x7fELF object"));
  return {
    outputFiles: [{ path: "net.o", digest: object, isExecutable: false, contents: Buffer.alloc(0) }],
    exitCode: 0,
    stdoutRaw: Buffer.alloc(0),
    stdoutDigest: undefined,
    stderrRaw: Buffer.alloc(0),
    stderrDigest: undefined,
    executionMetadata: undefined,
  };
}

describe("prepareAction / recordResult for compiles", () => {
  for (const [what, argv] of [
    ["with -o", ["/usr/bin/cc", "-std=c99", "-c", "-O3", "-g", "-ggdb", "net.c", "-o", "net.o"]],
    // hiredis, linenoise and hdr_histogram compile this way (`.c.o: $(CC) -c $<`): their objects missed on every warm build.
    ["without -o", ["/usr/bin/cc", "-std=c99", "-c", "-O3", "-g", "-ggdb", "net.c"]],
  ] as const) {
    it(`a one-source -c ${what} is keyed, recorded from its depfile, and a fresh extract at the same path finds it`, async () => {
      const deps = { store, cache, externalDigest: async () => undefined };
      const first = await prepareAction(compile([...argv]), view(), deps);
      expect(first.action.doNotCache).toBe(false);
      expect(first.level1).toBeDefined();
      expect(first.cached).toBeUndefined();
      const r = await result();
      await recordResult(compile([...argv]), first, r, "net.o: net.c net.h\n", view(), deps);

      const again = await prepareAction(compile([...argv]), view(), deps);
      expect(again.level1).toBe(first.level1);
      expect(again.cached?.outputFiles.map((f) => f.path)).toEqual(["net.o"]);
    });
  }
});

describe("a compile's input root", () => {
  it("is the context without objects and archives, made once per context, keyed as before", async () => {
    const files = new Map([
      ["deps/hiredis/net.c", { digest: digestOf('#include "net.h"\nint n(void) { return N; }\n'), executable: false }],
      ["deps/hiredis/net.h", { digest: digestOf("#define N 1\n"), executable: false }],
      ["deps/hiredis/net.o", { digest: digestOf("\x7fELF net"), executable: false }],
      ["deps/jemalloc/lib/libjemalloc.a", { digest: digestOf("!<arch>"), executable: false }],
    ]);
    const tree = buildTree(files);
    for (const d of tree.directories.values()) await store.put(Directory.encode(d).finish());
    const ctx = new ContextIndex(tree.root, files);
    const withObjects: BuildView = { projectRoot: PROJECT, context: ctx, produced: new Map(), noCache: false };
    const deps = { store, cache, externalDigest: async () => undefined, pruneMemo: new Map() };
    const argv = ["/usr/bin/cc", "-c", "net.c", "-o", "net.o"];
    const p = await prepareAction(compile(argv), withObjects, deps);
    expect(p.inputRoot).not.toEqual(tree.root);
    expect(ctx.compileRootHash).toBe(p.inputRoot.hash);
    const loaded = await loadTree(store, p.inputRoot);
    expect([...loaded.files.keys()].sort()).toEqual(["deps/hiredis/net.c", "deps/hiredis/net.h"]);
    expect(loaded.dirDigests.has("deps/jemalloc/lib")).toBe(true);
    // The same key as against the fake tree of view(): the input root is not part of a compile's key.
    expect(p.level1).toBe((await prepareAction(compile(argv), view(), deps)).level1);
    expect((await prepareAction(compile(argv), withObjects, deps)).inputRoot).toEqual(p.inputRoot);
  });

  it("is the whole context when its tree cannot be read (the node then says what is missing, as before)", async () => {
    const p = await prepareAction(compile(["/usr/bin/cc", "-c", "net.c"]), view(), { store, cache, externalDigest: async () => undefined });
    expect(p.inputRoot).toEqual(digestOf("root"));
  });
});

describe("the argv policy at the head", () => {
  it("a CMake-style compile with absolute paths in the project is keyed, recorded and found again", async () => {
    const argv = ["/usr/bin/cc", `-I${PROJECT}/deps/hiredis`, "-O2", "-o", "net.o", "-c", `${PROJECT}/deps/hiredis/net.c`];
    const deps = { store, cache, externalDigest: async () => undefined };
    const first = await prepareAction(compile(argv), view(), deps);
    expect(first.action.doNotCache).toBe(false);
    await recordResult(compile(argv), first, await result(), `net.o: ${PROJECT}/deps/hiredis/net.c ${PROJECT}/deps/hiredis/net.h\n`, view(), deps);
    const again = await prepareAction(compile(argv), view(), deps);
    expect(again.cached?.outputFiles.map((f) => f.path)).toEqual(["net.o"]);
  });

  it.each([
    [["/usr/bin/cc", "-O2", "-wrapper", "./w.sh", "-c", "net.c", "-o", "net.o"], "-wrapper"],
    [["/usr/bin/cc", "-I/etc", "-c", "net.c", "-o", "net.o"], "-I"],
    [["/usr/bin/ar", "rcs", "/tmp/evil.a", "net.o"], "archive /tmp/evil.a"],
    [["/usr/bin/cc", "@/etc/evil.rsp", "-c", "net.c"], "@/etc/evil.rsp"],
  ])("refuses %j as the user's error naming %s and the output", async (argv, option) => {
    const deps = { store, cache, externalDigest: async () => undefined };
    const err = await prepareAction(compile(argv), view(), deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArgvRefusedError);
    expect((err as ArgvRefusedError).message).toBe(`deps/hiredis/net.o: refused ${option}: ${(err as ArgvRefusedError).refusal.message}`);
    expect(isInfrastructureError(err)).toBe(false);
  });
});

describe("a compile's manifest at the head", () => {
  it("keys a header outside the tree by its external digest and leaves the toolchain's out", async () => {
    const external = new Map([["/opt/x/x.h", digestOf("x 1")]]);
    const deps = { store, cache, externalDigest: async (p: string) => external.get(p) };
    const argv = ["/usr/bin/cc", "-c", "net.c", "-o", "net.o"]; // net.c says #include "/opt/x/x.h"
    const first = await prepareAction(compile(argv), view(), deps);
    await recordResult(compile(argv), first, await result(), "net.o: net.c net.h /opt/x/x.h /usr/include/stdio.h\n", view(), deps);
    expect(cache.getManifests(first.level1!)[0]?.headers.map((h) => h.path)).toEqual(["/opt/x/x.h", "deps/hiredis/net.h"]);
    expect((await prepareAction(compile(argv), view(), deps)).cached).toBeDefined();
    external.set("/opt/x/x.h", digestOf("x 2"));
    expect((await prepareAction(compile(argv), view(), deps)).cached).toBeUndefined();
  });
});
