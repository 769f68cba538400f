// Tests for extracting graphs from real Makefiles (run in temporary copies of the fixtures) and from make -n output.

import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import type { BuildGraph, GraphCommand } from "./graph.js";
import { afterEchoPrefix, ExtractError, extractMake, parseMakeDryRun } from "./make.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const temps: string[] = [];

afterAll(async () => {
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "orion-dag-"));
  temps.push(dir);
  return dir;
}

/** A clean copy of a fixture, so the fixture in the repository is never built in. */
async function fixtureCopy(name: string): Promise<string> {
  const dir = path.join(await tempDir(), name);
  await cp(path.join(FIXTURES, name), dir, { recursive: true });
  await execa("make", ["clean"], { cwd: dir });
  return dir;
}

const byLabel = (g: BuildGraph, label: string): GraphCommand => {
  const c = g.commands.find((x) => x.label === label);
  if (!c) throw new Error(`no command labelled ${label}`);
  return c;
};
const ofKind = (g: BuildGraph, kind: string): GraphCommand[] => g.commands.filter((c) => c.kind === kind && !c.host);

/**
 * Runs the graph's commands in a dependency order deliberately unlike make's (the
 * highest ready id first), so a missing edge shows up as a failed build.
 */
async function runGraph(g: BuildGraph): Promise<void> {
  const done = new Set<string>();
  const pending = [...g.commands];
  while (pending.length > 0) {
    const ready = pending.filter((c) => c.deps.every((d) => done.has(d)));
    const next = ready.at(-1);
    if (!next) throw new Error("graph has a cycle or a dangling dependency");
    await execa(next.argv[0]!, next.argv.slice(1), { cwd: path.join(g.root, next.cwd) });
    done.add(next.id);
    pending.splice(pending.indexOf(next), 1);
  }
}

describe("extractMake on fixtures", () => {
  it("multi-c: compiles, two archives over their objects, two links over the archives", async () => {
    const dir = await fixtureCopy("multi-c");
    const g = await extractMake(dir);
    expect(g.source).toBe("make");
    expect(g.commands.filter((c) => c.host)).toEqual([]);
    const compiles = ofKind(g, "compile");
    expect(compiles).toHaveLength(28);
    expect(ofKind(g, "archive")).toHaveLength(2);
    expect(ofKind(g, "link")).toHaveLength(2);

    const add = byLabel(g, "CC lib/add.o");
    expect(add).toMatchObject({ cwd: "", inputs: ["lib/add.c"], outputs: ["lib/add.o"], deps: [] });
    expect(add.argv).toEqual(["gcc", "-O2", "-g", "-Wall", "-c", "lib/add.c", "-o", "lib/add.o"]);

    const calc = byLabel(g, "AR lib/libcalc.a");
    const calcObjs = compiles.filter((c) => c.outputs[0]!.startsWith("lib/"));
    expect(calcObjs).toHaveLength(12);
    expect(calc.deps).toEqual(calcObjs.map((c) => c.id));
    expect(calc.inputs).toEqual(calcObjs.map((c) => c.outputs[0]));

    const util = byLabel(g, "AR util/libutil.a");
    const app1 = byLabel(g, "LINK app1/app1");
    expect(app1.inputs).toEqual(["app1/main.o", "app1/report.o", "lib/libcalc.a", "util/libutil.a"]);
    expect(app1.deps).toEqual(expect.arrayContaining([calc.id, util.id, byLabel(g, "CC app1/main.o").id]));
    expect(app1.deps).toHaveLength(4);
    expect(byLabel(g, "LINK app2/app2").deps).toEqual(expect.arrayContaining([calc.id, util.id]));

    await runGraph(g);
    const out = await execa("./app1/app1", { cwd: dir });
    expect(out.stdout).toContain("fib(50) = 12586269025");
    expect((await execa("./app2/app2", { cwd: dir })).stdout).toContain("fnv1a(orion) = dd76c6f2");
    // The graph's commands produced everything make wants, so make has nothing left to do.
    expect((await execa("make", ["-q"], { cwd: dir, reject: false })).exitCode).toBe(0);
    expect((await extractMake(dir)).commands).toEqual([]);
    expect((await extractMake(dir, { always: true })).commands).toHaveLength(32);
  });

  it("multi-c: make arguments select a target and override variables", async () => {
    const dir = await fixtureCopy("multi-c");
    const g = await extractMake(dir, { makeArgs: ["CC=clang-99", "CFLAGS=-O0", "lib/libcalc.a"] });
    expect(g.commands).toHaveLength(13);
    expect(byLabel(g, "CC lib/add.o").argv).toEqual(["clang-99", "-O0", "-c", "lib/add.c", "-o", "lib/add.o"]);
  });

  it("cxx: C++ compiles and one link", async () => {
    const dir = await fixtureCopy("cxx");
    const g = await extractMake(dir);
    expect(g.commands.map((c) => c.label)).toEqual(["CXX main.o", "CXX shapes.o", "CXX stats.o", "CXX format.o", "LINK geometry"]);
    expect(byLabel(g, "LINK geometry").deps).toEqual(["a1", "a2", "a3", "a4"]);
    await runGraph(g);
    expect((await execa("./geometry", { cwd: dir })).stdout).toBe("circle   7.069\nrect     12.750\ntriangle 6.000\ntotal    25.819");
  });

  it("gen-header: the header generator is a host step that the compiles wait for", async () => {
    const dir = await fixtureCopy("gen-header");
    const g = await extractMake(dir);
    const gen = g.commands.find((c) => c.host)!;
    expect(gen).toMatchObject({ kind: "script", argv: ["/bin/sh", "-c", "sh gen-version.sh VERSION > include/version.h"], deps: [] });
    expect(gen.label).toBe("RUN sh gen-version.sh VERSION > include/version.h");
    expect(byLabel(g, "CC main.o").deps).toEqual([gen.id]);
    expect(byLabel(g, "CC greet.o").deps).toEqual([gen.id]);
    await runGraph(g);
    expect((await execa("./hello", { cwd: dir })).stdout).toBe("hello, orion (version 1.4.2)");
  });

  it("compile-error: make -n lists the broken compile like any other", async () => {
    const dir = await fixtureCopy("compile-error");
    const g = await extractMake(dir);
    expect(g.commands.map((c) => c.label)).toEqual(["CC main.o", "CC good.o", "CC bad.o", "LINK broken"]);
    await expect(runGraph(g)).rejects.toThrow(/bad\.c/);
  });

  it("throws ExtractError with make's stderr when make -n fails", async () => {
    const dir = await fixtureCopy("multi-c");
    const err = await extractMake(dir, { makeArgs: ["no-such-target"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtractError);
    expect((err as ExtractError).exitCode).toBe(2);
    expect((err as ExtractError).stderr).toContain("No rule to make target 'no-such-target'");
    const empty = await tempDir();
    await expect(extractMake(empty)).rejects.toMatchObject({ exitCode: 2, stderr: expect.stringContaining("No targets") });
  });
});

describe("recursive make", () => {
  it("follows directories and drops the $(MAKE) lines whose commands -n already printed", async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, "sub"));
    await writeFile(path.join(dir, "sub/x.c"), "int x(void) { return 1; }\nint main(void) { return 0; }\n");
    await writeFile(path.join(dir, "sub/Makefile"), "x.o: x.c\n\tgcc -c x.c -o x.o\n");
    await writeFile(path.join(dir, "Makefile"), "app: sub\n\tgcc -o app sub/x.o\nsub:\n\t$(MAKE) -C sub\n.PHONY: sub\n");
    const g = await extractMake(dir, { env: { ...process.env, MAKEFLAGS: "-s" } });
    expect(g.commands.map((c) => [c.label, c.cwd, c.inputs, c.deps])).toEqual([
      ["CC sub/x.o", "sub", ["sub/x.c"], []],
      ["LINK app", "", ["sub/x.o"], ["a1"]],
    ]);
  });

  it("keeps a recursive make whose makefile does not exist yet (a configure step writes it), as a host step", () => {
    // /r/dep has no makefile on this machine: make -n entered it, printed nothing and failed (on stderr).
    const out = [
      "make: Entering directory '/r'",
      "cd dep && ./configure",
      "cd dep && make lib/libdep.a",
      "make[1]: Entering directory '/r/dep'",
      "make[1]: Leaving directory '/r/dep'",
      "cc -c main.c -o main.o",
      "make: Leaving directory '/r'",
      "",
    ].join("\n");
    expect(parseMakeDryRun(out, "/r")).toEqual([
      { dir: "/r", line: "cd dep && ./configure" },
      { dir: "/r", line: "cd dep && make lib/libdep.a" },
      { dir: "/r", line: "cc -c main.c -o main.o" },
    ]);
  });

  it("keeps a literal make that -n did not run, as a host step", () => {
    const root = "/r";
    const out = [
      "make: Entering directory '/r'",
      "make -C a",
      "cd b && make x",
      "make[1]: Entering directory '/r/b'",
      "cc -c y.c -o y.o",
      "make[1]: Nothing to be done for 'z'.",
      "make[1]: Leaving directory '/r/b'",
      "echo a \\",
      "  b",
      "make: Leaving directory '/r'",
      "",
    ].join("\n");
    expect(parseMakeDryRun(out, root)).toEqual([
      { dir: "/r", line: "make -C a" },
      { dir: "/r/b", line: "cc -c y.c -o y.o" },
      { dir: "/r", line: "echo a \\\n  b" },
    ]);
  });
});

describe("a message printed before the command (quiet-mode makefiles)", () => {
  it("afterEchoPrefix: the command after a plain printf/echo, at most redirected to stderr", () => {
    const redis = `printf '    %b %b\\n' "\\033[34m"CC"\\033[0m" "\\033[33m"adlist.o"\\033[0m" 1>&2;cc -pedantic -std=c11 -O2 -MMD -o adlist.o -c adlist.c`;
    expect(afterEchoPrefix(redis)).toBe("cc -pedantic -std=c11 -O2 -MMD -o adlist.o -c adlist.c");
    expect(afterEchoPrefix("echo 'CC a.o; really';gcc -c a.c -o a.o")).toBe("gcc -c a.c -o a.o");
    expect(afterEchoPrefix("echo hi > log; gcc -c a.c -o a.o")).toBeUndefined();
    expect(afterEchoPrefix("touch x; gcc -c a.c -o a.o")).toBeUndefined();
    expect(afterEchoPrefix("echo $(date); gcc -c a.c -o a.o")).toBeUndefined();
    expect(afterEchoPrefix("gcc -c a.c -o a.o")).toBeUndefined();
    // After a comment sh runs nothing, so the compile is not there to classify.
    expect(afterEchoPrefix("echo CC a.o # note; gcc -c a.c -o a.o")).toBeUndefined();
    expect(afterEchoPrefix("echo CC#a.o; gcc -c a.c -o a.o")).toBe("gcc -c a.c -o a.o");
  });

  it("a quiet-mode compile is an action, not a host step; the message-only line stays a host step", async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, "a.c"), "int a;\n");
    await writeFile(
      path.join(dir, "Makefile"),
      "all: a.o\n\techo done\na.o: a.c\n\t@printf '    %b %b\\n' CC a.o 1>&2;gcc -c a.c -o a.o\n",
    );
    const g = await extractMake(dir);
    expect(g.commands.map((c) => [c.kind, c.host, c.argv, !!c.printsOnly])).toEqual([
      ["compile", false, ["gcc", "-c", "a.c", "-o", "a.o"], false],
      ["other", true, ["/bin/sh", "-c", "echo done"], true],
    ]);
  });

  it("a message-only step holds nothing up; one that writes a file is a barrier", async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, "a.c"), "int a;\n");
    await writeFile(path.join(dir, "b.c"), "int b;\n");
    await writeFile(path.join(dir, "Makefile"), "all:\n\tgcc -c a.c -o a.o\n\tprintf '%b\\n' MAKE\n\tgcc -c b.c -o b.o\n\techo x > log\n\tgcc -c -o c.o b.c\n");
    const g = await extractMake(dir);
    expect(g.commands.map((c) => [c.label.split(" ")[0], !!c.printsOnly, c.deps])).toEqual([
      ["CC", false, []],
      ["RUN", true, ["a1"]],
      ["CC", false, []],
      ["RUN", false, ["a1", "a3"]],
      ["CC", false, ["a4"]],
    ]);
  });

  it("names the object of a compile without -o, as the driver would", async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, "net.c"), "int n;\n");
    await writeFile(path.join(dir, "Makefile"), "all:\n\tcc -c -O2 net.c\n");
    const g = await extractMake(dir);
    expect(g.commands[0]).toMatchObject({ kind: "compile", outputs: ["net.o"], argv: ["cc", "-c", "-O2", "net.c", "-o", "net.o"] });
  });
});

describe("host steps for what a sandbox cannot do", () => {
  it("runs in-place updates and writes outside the tree on the host", async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, "a.c"), "int a;\n");
    await writeFile(path.join(dir, "Makefile"), "all:\n\tgcc -c a.c -o a.o\n\tar rcs liba.a a.o\n\tranlib liba.a\n\tgcc -c a.c -o /tmp/x.o\n\tgcc -o ../app a.o\n");
    const g = await extractMake(dir);
    expect(g.commands.map((c) => [c.kind, c.host, c.deps])).toEqual([
      ["compile", false, []],
      ["archive", false, ["a1"]],
      ["archive", true, ["a1", "a2"]],
      ["compile", true, ["a3"]],
      ["link", true, ["a4"]],
    ]);
  });
});
