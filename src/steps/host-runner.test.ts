// The whole-step cache end to end on one machine: real sh, real strace, a real blob store and SQLite files.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore } from "../cas/index.js";
import type { BlobStore } from "../cas/index.js";
import { findProgram } from "../core/programs.js";
import { silentLogger } from "../core/logger.js";
import { hashTree, StatCache } from "../merkle/index.js";
import { HostStepRunner } from "./host-runner.js";
import { StepCache } from "./step-cache.js";

const haveStrace = findProgram("strace", process.cwd()) !== undefined;

describe.skipIf(!haveStrace)("HostStepRunner with the step cache", () => {
  let dir: string;
  let root: string;
  let store: BlobStore;
  let statCache: StatCache;
  let cache: StepCache;
  let output: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "orion-steps-"));
    root = path.join(dir, "p");
    mkdirSync(root);
    store = createBlobStore({ dir: path.join(dir, "cas") });
    statCache = new StatCache(path.join(dir, "stat.db"));
    cache = new StepCache(path.join(dir, "steps.db"));
    output = "";
  });
  afterEach(() => {
    cache.close();
    statCache.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const runner = () =>
    new HostStepRunner({
      store,
      statCache,
      cache,
      env: { PATH: process.env.PATH },
      jobs: 1,
      logger: silentLogger,
      diagnostics: (c) => (output += Buffer.from(c).toString()),
      signal: new AbortController().signal,
    });

  const run = async (line: string) => {
    const tree = await hashTree(root, { statCache });
    return runner().run({ argv: ["/bin/sh", "-c", line], cwd: root }, { root, files: tree.files, symlinks: tree.symlinks, directories: [...tree.dirDigests.keys()] });
  };

  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  const read = (rel: string) => readFileSync(path.join(root, rel), "utf8");

  /** The tree as a fresh extract would leave it: sources only. */
  const freshTree = () => {
    rmSync(root, { recursive: true, force: true });
    write("a.txt", "A\n");
    write("b.txt", "B\n");
    write("old.txt", "stale\n");
  };

  const STEP = "cat a.txt b.txt > out.txt; rm -f old.txt; mkdir -p gen; echo made > gen/x; cat maybe.txt 2>/dev/null; echo said";

  it("restores a step whose inputs are unchanged: its files, its removals, its output", async () => {
    freshTree();
    expect(await run(STEP)).toMatchObject({ ok: true, restored: false });
    expect(cache.count()).toBe(1);
    expect(output).toBe("said\n");

    freshTree();
    output = "";
    expect(await run(STEP)).toMatchObject({ ok: true, restored: true });
    expect(read("out.txt")).toBe("A\nB\n");
    expect(read("gen/x")).toBe("made\n");
    expect(existsSync(path.join(root, "old.txt"))).toBe(false);
    expect(output).toBe("said\n");
  });

  it("runs again when a file it read changed, or one it looked for in vain appeared", async () => {
    freshTree();
    await run(STEP);
    freshTree();
    write("b.txt", "B2\n");
    expect(await run(STEP)).toMatchObject({ restored: false });
    expect(read("out.txt")).toBe("A\nB2\n");

    freshTree();
    write("maybe.txt", "now here\n");
    output = "";
    expect(await run(STEP)).toMatchObject({ restored: false });
    expect(output).toBe("now here\nsaid\n");
  });

  it("runs again when a directory it listed gained an entry", async () => {
    write("in/1.in", "one\n");
    await run("cat in/*.in > all");
    write("in/2.in", "two\n");
    expect(await run("cat in/*.in > all")).toMatchObject({ restored: false });
    expect(read("all")).toBe("one\ntwo\n");
  });

  it("never stores a failed step or one that leaves files outside the project", async () => {
    freshTree();
    expect(await run("cat a.txt > out.txt; exit 3")).toMatchObject({ ok: false });
    const outside = path.join(dir, "outside.txt");
    expect(await run(`cat a.txt > ${outside}`)).toMatchObject({ ok: true });
    expect(cache.count()).toBe(0);
    freshTree();
    expect(await run(`cat a.txt > ${outside}`)).toMatchObject({ restored: false });
  });

  it("stores only the outputs the store lacks: a copy of a file it already holds is not sent again", async () => {
    freshTree();
    write("big.bin", "program bytes\n");
    await store.put(Buffer.from("program bytes\n"));
    const putFiles: string[] = [];
    const putFile = store.putFile.bind(store);
    store.putFile = (p, d) => (putFiles.push(path.relative(root, p)), putFile(p, d));
    expect(await run("cp big.bin copy.bin; echo new > fresh.txt")).toMatchObject({ ok: true, restored: false });
    expect(putFiles).toEqual(["fresh.txt"]);

    rmSync(path.join(root, "copy.bin"));
    rmSync(path.join(root, "fresh.txt"));
    expect(await run("cp big.bin copy.bin; echo new > fresh.txt")).toMatchObject({ ok: true, restored: true });
    expect(read("copy.bin")).toBe("program bytes\n");
    expect(read("fresh.txt")).toBe("new\n");
  });

  it("runs the step when a blob it would restore is gone from the store", async () => {
    freshTree();
    await run(STEP);
    rmSync(path.join(dir, "cas"), { recursive: true, force: true });
    store.close();
    store = createBlobStore({ dir: path.join(dir, "cas") });
    freshTree();
    expect(await run(STEP)).toMatchObject({ ok: true, restored: false });
    expect(read("out.txt")).toBe("A\nB\n");
  });

  it("counts a file the step only stat'ed as an input (make's up-to-date checks, test -e)", async () => {
    const line = "if [ -e flag ]; then echo yes > out; else echo no > out; fi";
    await run(line);
    expect(read("out")).toBe("no\n");
    write("flag", "");
    rmSync(path.join(root, "out"));
    expect(await run(line)).toMatchObject({ restored: false });
    expect(read("out")).toBe("yes\n");
  });

  it("restores a directory moved into place with its contents, and a symlink over a file", async () => {
    const line = "rm -rf out t; mkdir t; echo a > t/a; mv t out; ln -sf out/a link";
    await run(line);
    rmSync(path.join(root, "out"), { recursive: true });
    rmSync(path.join(root, "link"));
    write("link", "a plain file where the step makes a symlink\n");
    expect(await run(line)).toMatchObject({ ok: true, restored: true });
    expect(read("out/a")).toBe("a\n");
    expect(read("link")).toBe("a\n");
  });

  it("never removes what the step did not: a directory it removed empty now holds a file, so it runs", async () => {
    mkdirSync(path.join(root, "d"));
    await run("rmdir d");
    write("d/keep", "mine\n");
    expect(await run("rmdir d")).toMatchObject({ ok: false, restored: false });
    expect(read("d/keep")).toBe("mine\n");
  });

  it("a directory outside the project that was only checked for matters by existence, not by its changing mtime", async () => {
    const line = `if [ -d ${dir} ]; then echo there > out; fi`;
    await run(line);
    writeFileSync(path.join(dir, "unrelated"), "x"); // the directory's mtime moves, as /tmp's does all the time
    rmSync(path.join(root, "out"));
    expect(await run(line)).toMatchObject({ ok: true, restored: true });
    expect(read("out")).toBe("there\n");
  });
});
