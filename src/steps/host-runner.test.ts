// The whole-step cache end to end on one machine: real sh, real tracers (the preload library and strace, each in turn),
// a real blob store and SQLite files; steps run against a tree hashed up front (the client's loop) and lines run against
// the live file system (make drives the build).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore } from "../cas/index.js";
import type { BlobStore } from "../cas/index.js";
import { findProgram } from "../core/programs.js";
import { silentLogger } from "../core/logger.js";
import { hashTree, StatCache } from "../merkle/index.js";
import { HostStepRunner, type HostLine } from "./host-runner.js";
import { StepCache } from "./step-cache.js";

const haveStrace = findProgram("strace", process.cwd()) !== undefined;
const repo = path.resolve(import.meta.dirname, "../..");
const TRACERS = haveStrace ? ["preload", "strace"] : ["preload"];

beforeAll(() => {
  execFileSync("make", ["--no-print-directory", "-s", "native/build/liborion-trace.so"], { cwd: repo, stdio: "inherit" });
});

describe.each(TRACERS)("HostStepRunner with the step cache, traced by %s", (tracer) => {
  let dir: string;
  let root: string;
  let store: BlobStore;
  let statCache: StatCache;
  let cache: StepCache;
  let output: string;
  /** Where the live tests' steps count their runs: under /dev, which the step cache never counts as an input or output. */
  let counter: string;

  beforeEach(() => {
    counter = `/dev/shm/orion-step-runs-${process.pid}-${Math.random().toString(36).slice(2)}`;
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
    rmSync(counter, { force: true });
  });

  const runner = (by = tracer, preloadLibrary?: string) =>
    new HostStepRunner({
      preloadLibrary,
      store,
      statCache,
      cache,
      // A tracer that fails its probe would leave every step uncached: the tests below would fail.
      env: { PATH: process.env.PATH, ORION_STEP_TRACER: by },
      jobs: 1,
      logger: silentLogger,
      diagnostics: (c) => (output += Buffer.from(c).toString()),
      signal: new AbortController().signal,
    });

  const run = async (line: string, r = runner()) => {
    const tree = await hashTree(root, { statCache });
    return r.run({ argv: ["/bin/sh", "-c", line], cwd: root }, { root, files: tree.files, symlinks: tree.symlinks, directories: [...tree.dirDigests.keys()] });
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

  it.runIf(TRACERS.length > 1)("keys a step the same whichever tracer ran it: an entry one stored, the other restores", async () => {
    const other = TRACERS.find((t) => t !== tracer);
    freshTree();
    expect(await run(STEP)).toMatchObject({ ok: true, restored: false });
    freshTree();
    expect(await run(STEP, runner(other))).toMatchObject({ ok: true, restored: true });
  });

  it.runIf(tracer === "preload")("ORION_STEP_TRACER=none, or preload where it cannot work, runs steps untraced: nothing is stored", async () => {
    freshTree();
    expect(await run(STEP, runner("none"))).toMatchObject({ ok: true, restored: false });
    expect(await run(STEP, runner("preload", path.join(dir, "no-such-lib.so")))).toMatchObject({ ok: true, restored: false });
    expect(cache.count()).toBe(0);
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

  describe("lines run against the live file system", () => {
    const ENV = { PATH: process.env.PATH };
    const line = (sh: string, more: Partial<HostLine> = {}, r = runner()) => r.runLine({ argv: ["/bin/sh", "-c", sh], cwd: root, root, env: ENV, ...more });
    const text = (b: Uint8Array) => Buffer.from(b).toString();
    const runs = () => (existsSync(counter) ? readFileSync(counter, "utf8").split("\n").length - 1 : 0);
    const sources = () => {
      rmSync(root, { recursive: true, force: true });
      write("in/a.def", "A\n");
      write("in/b.def", "B\n");
      write("a.txt", "A\n");
    };

    it("restores a generator line in a fresh copy of the tree at the same path without running it, its stdout and stderr apart", async () => {
      const GEN = `cat in/a.def in/b.def > gen.h; echo generated; echo note >&2; echo run >> ${counter}`;
      sources();
      const first = await line(GEN);
      expect(first).toMatchObject({ ok: true, restored: false });
      expect([text(first.stdout), text(first.stderr)]).toEqual(["generated\n", "note\n"]);
      expect(cache.count()).toBe(1);
      expect(output).toBe("");

      sources();
      const again = await line(GEN);
      expect(again).toMatchObject({ ok: true, restored: true });
      expect([text(again.stdout), text(again.stderr)]).toEqual(["generated\n", "note\n"]);
      expect(read("gen.h")).toBe("A\nB\n");
      expect(runs()).toBe(1);
    });

    it("runs again when an input changed, or a directory it listed gained an entry; restores a listing as it was before it wrote there", async () => {
      const GEN = `cat in/*.def > in/all.gen; echo run >> ${counter}`;
      sources();
      await line(GEN);
      sources();
      // The listing of in/ it recorded is the one before it made in/all.gen there.
      expect(await line(GEN)).toMatchObject({ restored: true });
      expect(runs()).toBe(1);

      sources();
      write("in/b.def", "B2\n");
      expect(await line(GEN)).toMatchObject({ ok: true, restored: false });
      expect(read("in/all.gen")).toBe("A\nB2\n");

      sources();
      write("in/c.def", "C\n");
      expect(await line(GEN)).toMatchObject({ ok: true, restored: false });
      expect(read("in/all.gen")).toBe("A\nB\nC\n");
      expect(runs()).toBe(3);
    });

    it("keys a line without make's per-run variables and the build's socket, but runs it with them", async () => {
      const SH = 'echo "$MAKEFLAGS $MAKELEVEL" >&2; cat a.txt > b.txt';
      const make = (fifo: string, level: string, sock: string, extra: NodeJS.ProcessEnv = {}) => ({
        env: { ...ENV, MAKEFLAGS: ` -j8 --jobserver-auth=fifo:${fifo}`, MFLAGS: "-j8", MAKELEVEL: level, MAKE_TERMOUT: "/dev/pts/1", MAKE_TERMERR: "/dev/pts/1", MAKEOVERRIDES: "", ORION_AGENT_SOCKET: sock, ...extra },
      });
      sources();
      const first = await line(SH, make("/tmp/GMfifo1", "1", "/tmp/orion-1.sock"));
      expect(text(first.stderr)).toBe(" -j8 --jobserver-auth=fifo:/tmp/GMfifo1 1\n");
      sources();
      expect(await line(SH, make("/tmp/GMfifo2", "2", "/tmp/orion-2.sock"))).toMatchObject({ ok: true, restored: true });
      sources();
      expect(await line(SH, make("/tmp/GMfifo2", "2", "/tmp/orion-2.sock", { CFLAGS: "-O2" }))).toMatchObject({ ok: true, restored: false });
    });

    it("two lines run at once through one runner are both recorded, each with its own inputs and outputs", async () => {
      const lineIn = (d: string) => `echo ${d} >> ${counter}; sleep 0.4; cat ${d}/x.in > ${d}/x.out; ls ${d} > /dev/null; echo ${d} >> ${counter}`;
      const tree = () => {
        rmSync(root, { recursive: true, force: true });
        write("l/x.in", "left\n");
        write("r/x.in", "right\n");
      };
      tree();
      const r = runner();
      const both = await Promise.all([line(lineIn("l"), {}, r), line(lineIn("r"), {}, r)]);
      expect(both.map((o) => o.ok)).toEqual([true, true]);
      // They did run at once: both started before either ended.
      expect(readFileSync(counter, "utf8").split("\n").slice(0, 2).sort()).toEqual(["l", "r"]);
      expect(cache.count()).toBe(2);

      tree();
      expect(await line(lineIn("l"), {}, r)).toMatchObject({ restored: true });
      expect(read("l/x.out")).toBe("left\n");
      expect(existsSync(path.join(root, "r/x.out"))).toBe(false);
      expect(await line(lineIn("r"), {}, r)).toMatchObject({ restored: true });
      expect(read("r/x.out")).toBe("right\n");
      expect(runs()).toBe(4);
    });

    it("an entry recorded against the hashed tree is found against the live file system, and the other way round", async () => {
      sources();
      await run("cat a.txt in/a.def > both.txt; ls in > list.txt");
      sources();
      expect(await line("cat a.txt in/a.def > both.txt; ls in > list.txt")).toMatchObject({ ok: true, restored: true });
      expect(read("list.txt")).toBe("a.def\nb.def\n");

      sources();
      await line("cat in/b.def > b.txt; ln -s b.txt b.link");
      sources();
      expect(await run("cat in/b.def > b.txt; ln -s b.txt b.link")).toMatchObject({ ok: true, restored: true });
      expect(read("b.link")).toBe("B\n");
    });

    it("a line that reads a file and then removes it: stored on its first run under the preload (it hashed the file before rm), else once a look-up saw that file before it ran", async () => {
      const SH = "if [ -e flag ]; then cat a.txt > out; rm a.txt; else cat a.txt > out; fi";
      sources();
      write("flag", "");
      expect(await line(SH)).toMatchObject({ ok: true, restored: false });
      if (tracer === "strace") {
        expect(cache.count()).toBe(0);
        sources();
        await line(SH);
        expect(cache.count()).toBe(1);
        // This look-up reads a.txt (the stored entry's first input), then finds flag changed: the run that follows is stored.
        sources();
        write("flag", "");
        expect(await line(SH)).toMatchObject({ ok: true, restored: false });
      }
      expect(cache.count()).toBe(tracer === "strace" ? 2 : 1);
      sources();
      write("flag", "");
      expect(await line(SH)).toMatchObject({ ok: true, restored: true });
      expect(existsSync(path.join(root, "a.txt"))).toBe(false);
      expect(read("out")).toBe("A\n");
    });

    it.runIf(tracer === "preload")("a line that changes a file in place (touch, >>) is stored on its first run, keyed by what the file held", async () => {
      // Redis's mkreleasehdr.sh: `touch release.c` opens it to change in place; the preload tracer hashes it first.
      const SH = `cat a.txt > out; touch in/a.def; echo more >> in/b.def; echo run >> ${counter}`;
      sources();
      expect(await line(SH)).toMatchObject({ ok: true, restored: false });
      expect(cache.count()).toBe(1);
      sources();
      expect(await line(SH)).toMatchObject({ ok: true, restored: true });
      expect(runs()).toBe(1);
      expect(read("in/b.def")).toBe("B\nmore\n");
      // Another content before the line: it runs again.
      sources();
      write("in/b.def", "C\n");
      expect(await line(SH)).toMatchObject({ ok: true, restored: false });
      expect(read("in/b.def")).toBe("C\nmore\n");
      expect(runs()).toBe(2);
    });

    it("an interrupted line's new files go, not those that existed before it (appended to, saved over), and it is not stored", async () => {
      sources();
      write("old.h", "kept\n");
      write("src.c", "int v = 1;\n");
      const abort = new AbortController();
      const running = line("echo partial > gen.h; echo more >> old.h; echo 'int v = 2;' > src.new && mv src.new src.c; mkdir -p made; echo x > made/f; touch started; exec sleep 60", { signal: abort.signal });
      for (let i = 0; i < 250 && !existsSync(path.join(root, "started")); i++) await new Promise((r) => setTimeout(r, 20));
      abort.abort();
      const r = await running;
      expect(r).toMatchObject({ ok: false, canceled: true });
      expect(["gen.h", "started", "made/f"].filter((f) => existsSync(path.join(root, f)))).toEqual([]);
      expect(read("old.h")).toBe("kept\nmore\n");
      expect(read("src.c")).toBe("int v = 2;\n");
      expect(read("a.txt")).toBe("A\n");
      expect(cache.count()).toBe(0);
    });
  });
});
