// End-to-end tests of LocalExecutor with real gcc, ar and files: sandboxed results must equal a plain run in the project.
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createBlobStore } from "../cas/index.js";
import type { BlobStore } from "../cas/blob-store.js";
import { ExitCode, Status, isInfrastructureError, type Digest } from "../core/index.js";
import { buildTree, type TreeEntry } from "../merkle/index.js";
import { Directory, type Command } from "../gen/orion/v1/remote_execution.js";
import { LocalExecutor, storeInputs, type ExecRequest, type InputSource } from "./local-executor.js";
import { GRANDCHILD_SCRIPT, expectGroupTimedOut, treeListing } from "./test-helpers.js";

const ENV = [
  { name: "LANG", value: "C" },
  { name: "PATH", value: process.env.PATH ?? "/usr/bin:/bin" },
];
const PLAIN_ENV = Object.fromEntries(ENV.map((e) => [e.name, e.value]));

let tmp: string;
let store: BlobStore;
let executor: LocalExecutor;
const executors: LocalExecutor[] = [];

/** Puts every file, symlink and Directory of `dir` into the store; returns the root digest. */
async function uploadDir(dir: string): Promise<Digest> {
  const files: [string, TreeEntry][] = [];
  const symlinks: [string, string][] = [];
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      const rel = relative(dir, full);
      if (e.isDirectory()) await walk(full);
      else if (e.isSymbolicLink()) symlinks.push([rel, await fsp.readlink(full)]);
      else {
        const st = await fsp.stat(full);
        files.push([rel, { digest: await store.putFile(full), executable: (st.mode & 0o111) !== 0 }]);
      }
    }
  };
  await walk(dir);
  const tree = buildTree(files, { symlinks });
  for (const [, message] of tree.directories) await store.put(Directory.encode(message).finish());
  return tree.root;
}

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await fsp.mkdir(join(root, rel, ".."), { recursive: true });
    await fsp.writeFile(join(root, rel), text);
  }
}

function command(argv: string[], outputPaths: string[], workingDirectory = "", extraEnv: Command["environmentVariables"] = []): Command {
  return { arguments: argv, environmentVariables: [...ENV, ...extraEnv], outputPaths, workingDirectory, platform: undefined };
}

async function blob(d: Digest | undefined): Promise<Buffer> {
  const data = await store.get(d!);
  if (!data) throw new Error("blob missing");
  return data;
}

let projectCounter = 0;
async function newProject(files: Record<string, string>): Promise<string> {
  const root = join(tmp, `proj${++projectCounter}`);
  await writeTree(root, files);
  return root;
}

function request(projectRoot: string, inputRoot: Digest, cmd: Command, kind: string, extra: Partial<ExecRequest> = {}): ExecRequest {
  return { actionId: `t${++projectCounter}`, command: cmd, inputRoot, projectRoot, kind, timeoutMs: 30_000, ...extra };
}

beforeAll(async () => {
  tmp = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "orion-exec-")));
  store = createBlobStore({ dir: join(tmp, "cas") });
  executor = new LocalExecutor({ store, workDir: join(tmp, "work"), workerName: "test-node" });
  executors.push(executor);
});

afterEach(async () => {
  // Every sandbox is gone after every action, whatever its outcome.
  const left = await fsp.readdir(join(tmp, "work", "sb")).catch(() => []);
  expect(left).toEqual([]);
});

afterAll(async () => {
  for (const e of executors) await e.close();
  store.close();
  await execa("chmod", ["-R", "u+w", tmp], { reject: false });
  await fsp.rm(tmp, { recursive: true, force: true });
});

const X_C = `#include <stdio.h>
#include "a.h"
int main(void) { printf("%s %d\\n", __FILE__, twice(A)); return 0; }
`;
const A_H = `#define A 21
static inline int twice(int x) { return 2 * x; }
`;

describe("compile in the shared context", () => {
  it("produces the object and depfile gcc produces in the project, byte for byte", async () => {
    const proj = await newProject({ "x.c": X_C, "a.h": A_H });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-g", "-O2", "-MD", "-c", "x.c", "-o", "x.o"];
    const out = await executor.execute(request(proj, root, command(argv, ["x.o", "x.d"]), "compile"));

    await execa(argv[0]!, argv.slice(1), { cwd: proj, env: PLAIN_ENV, extendEnv: false });
    expect(out.result.exitCode).toBe(0);
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["x.o", "x.d"]);
    const [obj, dep] = out.result.outputFiles;
    expect((await blob(obj!.digest)).equals(await fsp.readFile(join(proj, "x.o")))).toBe(true);
    const gccDep = await fsp.readFile(join(proj, "x.d"), "utf8");
    expect(out.depfile).toBe(gccDep);
    expect((await blob(dep!.digest)).toString()).toBe(gccDep);
    expect(out.result.executionMetadata?.worker).toBe("test-node");
    expect(out.phases.executeMs).toBeGreaterThan(0);
  });

  it("matches gcc with a subdirectory, absolute -I, -MMD -MP, ./ in -o and a depfile that wraps", async () => {
    const longHeader = "a_rather_long_header_name_so_that_the_dependency_line_wraps.h";
    const proj = await newProject({
      "src/main.c": `#include "${longHeader}"\n#include "local.h"\nint main(void) { return LOCAL + INC; }\n`,
      "src/local.h": "#define LOCAL 1\n",
      [`include/${longHeader}`]: "#define INC 2\n",
    });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-g", "-O1", "-MMD", "-MP", `-I${proj}/include`, "-c", "main.c", "-o", "./obj/main.o"];
    const out = await executor.execute(request(proj, root, command(argv, ["obj/main.o", "obj/main.d"], "src"), "compile"));

    await fsp.mkdir(join(proj, "src/obj"));
    await execa(argv[0]!, argv.slice(1), { cwd: join(proj, "src"), env: PLAIN_ENV, extendEnv: false });
    expect(out.result.exitCode).toBe(0);
    const gccDep = await fsp.readFile(join(proj, "src/obj/main.d"), "utf8");
    expect(gccDep).toContain("\\\n"); // the case only means something if gcc wrapped
    expect(out.depfile).toBe(gccDep);
    const [obj] = out.result.outputFiles;
    expect((await blob(obj!.digest)).equals(await fsp.readFile(join(proj, "src/obj/main.o")))).toBe(true);
  });

  it("compiles into a sibling of its cwd (-o ../lib/a.o from programs/) as gcc does, depfile and all", async () => {
    const proj = await newProject({ "lib/a.c": `#include "a.h"\nint a(void) { return A; }\n`, "lib/a.h": "#define A 3\n", "programs/.keep": "" });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-g", "-O1", "-MMD", "-I../lib", "-c", "../lib/a.c", "-o", "../lib/a.o"];
    const out = await executor.execute(request(proj, root, command(argv, ["../lib/a.o", "../lib/a.d"], "programs"), "compile"));

    await execa(argv[0]!, argv.slice(1), { cwd: join(proj, "programs"), env: PLAIN_ENV, extendEnv: false });
    expect(out.result.exitCode).toBe(0);
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["../lib/a.o", "../lib/a.d"]);
    const gccDep = await fsp.readFile(join(proj, "lib/a.d"), "utf8");
    expect(gccDep).toContain("../lib/a.o:");
    expect(out.depfile).toBe(gccDep);
    const [obj, dep] = out.result.outputFiles;
    expect((await blob(obj!.digest)).equals(await fsp.readFile(join(proj, "lib/a.o")))).toBe(true);
    expect((await blob(dep!.digest)).toString()).toBe(gccDep);
    // The shared context got nothing: the outputs went to the private folder only.
    for (const ctx of await fsp.readdir(join(tmp, "work", "ctx"))) {
      await expect(fsp.stat(join(tmp, "work", "ctx", ctx, "lib", "a.o"))).rejects.toThrow();
    }
  });

  it("learns the headers through a private depfile when the user asked for none", async () => {
    const proj = await newProject({ "x.c": X_C, "a.h": A_H });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-g", "-c", `${proj}/x.c`, "-o", "x.o"];
    const out = await executor.execute(request(proj, root, command(argv, ["x.o"]), "compile"));
    await execa(argv[0]!, argv.slice(1), { cwd: proj, env: PLAIN_ENV, extendEnv: false });
    expect(out.depfile).toMatch(new RegExp(`^x\\.o: ${proj}/x\\.c .*${proj}/a\\.h\\n`, "s"));
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["x.o"]);
    expect((await blob(out.result.outputFiles[0]!.digest)).equals(await fsp.readFile(join(proj, "x.o")))).toBe(true);
  });

  it("runs a -c without -o (hiredis's `cc -c net.c`) there too: gcc's object byte for byte, no sandbox path in it, and a depfile", async () => {
    const proj = await newProject({ "deps/lib/x.c": X_C, "deps/lib/a.h": A_H });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-std=c99", "-c", "-O2", "-g", "-ggdb", "x.c"];
    const out = await executor.execute(request(proj, root, command(argv, ["x.o"], "deps/lib"), "compile"));
    await execa(argv[0]!, argv.slice(1), { cwd: join(proj, "deps/lib"), env: PLAIN_ENV, extendEnv: false });
    expect(out.result.exitCode).toBe(0);
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["x.o"]);
    const obj = await blob(out.result.outputFiles[0]!.digest);
    expect(obj.includes(join(tmp, "work"))).toBe(false);
    expect(obj.equals(await fsp.readFile(join(proj, "deps/lib/x.o")))).toBe(true);
    expect(out.depfile).toMatch(/^x\.o: x\.c .*a\.h\n/s);
  });

  it("returns a compile error as exit code 1 with gcc's own diagnostics", async () => {
    const proj = await newProject({ "bad.c": "int main(void) { return nope; }\n" });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-c", `${proj}/bad.c`, "-o", "bad.o"];
    const out = await executor.execute(request(proj, root, command(argv, ["bad.o"]), "compile"));
    const plain = await execa(argv[0]!, argv.slice(1), { cwd: proj, env: PLAIN_ENV, extendEnv: false, reject: false });
    expect(out.result.exitCode).toBe(1);
    expect(out.result.outputFiles).toEqual([]);
    expect(out.result.stderrRaw.toString()).toBe(plain.stderr + "\n");
    expect(out.result.stderrRaw.toString()).toContain(`${proj}/bad.c:1:`);
    expect((await blob(out.result.stderrDigest)).equals(out.result.stderrRaw)).toBe(true);
  });

  it("materializes one input root once for concurrent actions", async () => {
    const files: Record<string, string> = { "x.c": X_C, "a.h": A_H };
    for (let i = 0; i < 200; i++) files[`gen/h${i}.h`] = `#define H${i} ${i}\n`;
    const proj = await newProject(files);
    const root = await uploadDir(proj);
    let materialized = 0;
    const counting: BlobStore = Object.create(store, {
      materialize: { value: (d: Digest, dest: string, x: boolean) => (materialized++, store.materialize(d, dest, x)) },
    });
    const workDir = join(tmp, "work-concurrent");
    const ex = new LocalExecutor({ store: counting, workDir, workerName: "n2" });
    executors.push(ex);
    const run = (out: string) => ex.execute(request(proj, root, command(["gcc", "-c", "x.c", "-o", out], [out]), "compile"));
    const [a, b] = await Promise.all([run("one.o"), run("two.o")]);
    expect(a.result.exitCode).toBe(0);
    expect(b.result.exitCode).toBe(0);
    expect(materialized).toBe(202);
    expect(await fsp.readdir(join(workDir, "ctx"))).toEqual([root.hash]);
    await run("three.o");
    expect(materialized).toBe(202);
  });
});

describe("a node's contexts, patched in place (ownsWorkDir)", () => {
  it("turns an idle context into the next by its differences, and back, each equal to a fresh one", async () => {
    const first = { "x.c": '#include "a.h"\nint x(void) { return A; }\n', "a.h": "#define A 1\n", "gen/keep.h": "", "gen/old.h": "old\n", "old/deep/f.h": "f\n", "lnk": "" };
    const proj = await newProject(first);
    await fsp.rm(join(proj, "lnk"));
    await fsp.symlink("a.h", join(proj, "lnk"));
    const root1 = await uploadDir(proj);
    // The next context: a changed header, a file and a whole folder gone, a file and a folder come, a symlink retargeted.
    await writeTree(proj, { "a.h": "#define A 2\n", "gen/new.h": "new\n", "new/dir/g.h": "#define G 3\n" });
    await fsp.writeFile(join(proj, "x.c"), '#include "a.h"\n#include "new/dir/g.h"\nint x(void) { return A + G; }\n');
    await fsp.rm(join(proj, "gen/old.h"));
    await fsp.rm(join(proj, "old"), { recursive: true });
    await fsp.rm(join(proj, "lnk"));
    await fsp.symlink("gen/keep.h", join(proj, "lnk"));
    const root2 = await uploadDir(proj);

    let linked = 0;
    const counting: BlobStore = Object.create(store, {
      materialize: { value: (d: Digest, dest: string, x: boolean) => (linked++, store.materialize(d, dest, x)) },
    });
    const workDir = join(tmp, "work-owned");
    const ex = new LocalExecutor({ store: counting, workDir, workerName: "n3", ownsWorkDir: true });
    executors.push(ex);
    const compile = (root: Digest) => ex.execute(request(proj, root, command(["gcc", "-c", "x.c", "-o", "x.o"], ["x.o"]), "compile"));

    expect((await compile(root1)).result.exitCode).toBe(0);
    const linkedFirst = linked;
    const out2 = await compile(root2);
    expect(out2.result.exitCode).toBe(0);
    // Only what changed or came was linked: x.c, a.h, gen/new.h, new/dir/g.h (the empty gen/keep.h is written, not linked).
    expect(linked - linkedFirst).toBe(4);
    expect(await fsp.readdir(join(workDir, "ctx"))).toEqual([root2.hash]);
    await execa("gcc", ["-c", "x.c", "-o", "x.o"], { cwd: proj, env: PLAIN_ENV, extendEnv: false });
    expect((await blob(out2.result.outputFiles[0]!.digest)).equals(await fsp.readFile(join(proj, "x.o")))).toBe(true);

    // The patched context holds exactly what a fresh one would, folders read-only alike; its stamps cover every file.
    const fresh = join(tmp, "fresh-ctx");
    const plain = new LocalExecutor({ store, workDir: fresh, workerName: "n4" });
    executors.push(plain);
    expect((await plain.execute(request(proj, root2, command(["gcc", "-c", "x.c", "-o", "x.o"], ["x.o"]), "compile"))).result.exitCode).toBe(0);
    expect(await treeListing(join(workDir, "ctx", root2.hash))).toEqual(await treeListing(join(fresh, "ctx", root2.hash)));
    expect(await fsp.readdir(join(workDir, "ctx-stamps"))).toEqual([`${root2.hash}.json`]);
    const stamps = JSON.parse(await fsp.readFile(join(workDir, "ctx-stamps", `${root2.hash}.json`), "utf8"));
    expect(Object.keys(stamps).sort()).toEqual(["a.h", "gen/keep.h", "gen/new.h", "new/dir/g.h", "x.c"]);

    // Back to the first: patched again, and it compiles as the first tree does.
    const again = await compile(root1);
    expect(again.result.exitCode).toBe(0);
    expect(await fsp.readdir(join(workDir, "ctx"))).toEqual([root1.hash]);
    expect(await treeListing(join(workDir, "ctx", root1.hash))).toMatchObject({ "a.h": "#define A 1\n (444)", "gen/old.h": "old\n (444)", "old/deep/f.h": "f\n (444)", lnk: "-> a.h" });
    expect(Object.keys(await treeListing(join(workDir, "ctx", root1.hash)))).not.toContain("new/");
  });

  it("makes a context whole while the newest one is still compiled in", async () => {
    // A source gcc -O2 takes about a second over, so that a second compile starts while it runs.
    let slowC = "";
    for (let i = 0; i < 300; i++) slowC += `int f${i}(int *a, int n) { int s = 0; for (int j = 0; j < n; j++) s += a[j] * ${i} ^ (s >> 3); return s; }\n`;
    const proj = await newProject({ "x.c": slowC, "b.c": "int b(void) { return 2; }\n" });
    const root1 = await uploadDir(proj);
    await writeTree(proj, { "b.c": "int b(void) { return 3; }\n" });
    const root2 = await uploadDir(proj);
    const workDir = join(tmp, "work-owned-busy");
    const ex = new LocalExecutor({ store, workDir, workerName: "n5", ownsWorkDir: true });
    executors.push(ex);
    const slow = ex.execute(request(proj, root1, command(["gcc", "-O2", "-c", "x.c", "-o", "x.o"], ["x.o"]), "compile"));
    while (!(await fsp.readdir(join(workDir, "ctx")).catch((): string[] => [])).includes(root1.hash)) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    const quick = await ex.execute(request(proj, root2, command(["gcc", "-c", "b.c", "-o", "b.o"], ["b.o"]), "compile"));
    expect(quick.result.exitCode).toBe(0);
    expect((await slow).result.exitCode).toBe(0);
    expect((await fsp.readdir(join(workDir, "ctx"))).sort()).toEqual([root1.hash, root2.hash].sort());
  });
});

describe("private sandboxes", () => {
  let objs: string;
  let objsRoot: Digest;
  beforeAll(async () => {
    objs = await newProject({
      "a.c": "int a(void) { return 1; }\n",
      "b.c": "int b(void) { return 2; }\n",
      "main.c": '#include <stdio.h>\nint a(void); int b(void);\nint main(void) { printf("%d\\n", a() + b()); return 0; }\n',
    });
    for (const f of ["a", "b", "main"]) await execa("gcc", ["-c", `${f}.c`, "-o", `${f}.o`], { cwd: objs });
    objsRoot = await uploadDir(objs);
  });

  it("archives like ar in the project", async () => {
    const argv = ["ar", "rcs", "libx.a", "a.o", "b.o"];
    const out = await executor.execute(request(objs, objsRoot, command(argv, ["libx.a"]), "archive"));
    expect(out.result.exitCode).toBe(0);
    expect(out.depfile).toBeUndefined();
    const plainDir = join(tmp, "ar-plain");
    await fsp.cp(objs, plainDir, { recursive: true });
    await execa(argv[0]!, argv.slice(1), { cwd: plainDir });
    expect((await blob(out.result.outputFiles[0]!.digest)).equals(await fsp.readFile(join(plainDir, "libx.a")))).toBe(true);
  });

  it("links an executable and records its executable bit", async () => {
    const argv = ["gcc", "-o", "bin/app", "main.o", "a.o", "b.o"];
    const out = await executor.execute(request(objs, objsRoot, command(argv, ["bin/app"]), "link"));
    expect(out.result.exitCode).toBe(0);
    const [app] = out.result.outputFiles;
    expect(app!.isExecutable).toBe(true);
    const exe = join(tmp, "app");
    await fsp.writeFile(exe, await blob(app!.digest), { mode: 0o755 });
    expect((await execa(exe)).stdout).toBe("3");
  });

  it("brings each input root through its input source with the lease's peers: a private tree every time, a context once", async () => {
    const base = storeInputs(store);
    const brought: string[] = [];
    const inputs: InputSource = {
      load: base.load,
      bring: (root, peers, log, tree) => {
        brought.push(`${root.hash === objsRoot.hash ? "objs" : "src"}:${peers.map((p) => p.nodeId).join()}`);
        return base.bring(root, peers, log, tree);
      },
    };
    const ex = new LocalExecutor({ store, workDir: join(tmp, "work-inputs"), workerName: "n3", inputs });
    executors.push(ex);
    const maker = [{ nodeId: "maker", address: "127.0.0.1:1", holdsRoot: false }];
    for (const out of ["app1", "app2"]) {
      const link = await ex.execute(request(objs, objsRoot, command(["gcc", "-o", out, "main.o", "a.o", "b.o"], [out]), "link", { peers: maker }));
      expect(link.result.exitCode).toBe(0);
    }
    const src = await newProject({ "x.c": X_C, "a.h": A_H });
    const srcRoot = await uploadDir(src);
    const holder = [{ nodeId: "holder", address: "127.0.0.1:1", holdsRoot: true }];
    for (const out of ["one.o", "two.o"]) {
      const compile = await ex.execute(request(src, srcRoot, command(["gcc", "-c", "x.c", "-o", out], [out]), "compile", { peers: holder }));
      expect(compile.result.exitCode).toBe(0);
    }
    expect(brought).toEqual(["objs:maker", "objs:maker", "src:holder"]);
  });

  it("kills the whole process group on timeout and reports an infrastructure error", async () => {
    const pidFile = join(tmp, "grandchild.pid");
    const started = Date.now();
    const err = await executor
      .execute(request(objs, objsRoot, command(GRANDCHILD_SCRIPT, [], "", [{ name: "PID_FILE", value: pidFile }]), "other", { timeoutMs: 300 }))
      .catch((e: unknown) => e);
    await expectGroupTimedOut(err, started, pidFile);
  });

  it("kills the whole process group on cancellation", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const err = await executor
      .execute(request(objs, objsRoot, command(["sleep", "30"], []), "other", { signal: ac.signal }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Status.CANCELLED });
    expect(isInfrastructureError(err)).toBe(false);
  });

  it("reports a missing program as an infrastructure error naming it", async () => {
    const err = await executor.execute(request(objs, objsRoot, command(["/no/such/cc", "-c"], []), "other")).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringContaining("/no/such/cc") });
    expect(isInfrastructureError(err)).toBe(true);
  });

  it("fails a successful action that did not produce a declared output, but not a failed one", async () => {
    const err = await executor.execute(request(objs, objsRoot, command(["true"], ["none.o"]), "other")).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringMatching(/did not produce none\.o/) });
    const out = await executor.execute(request(objs, objsRoot, command(["false"], ["none.o"]), "other"));
    expect(out.result.exitCode).toBe(1);
    expect(out.result.outputFiles).toEqual([]);
  });

  it("enforces the output size cap", async () => {
    const argv = ["sh", "-c", "head -c 5000 /dev/zero > big.bin"];
    const err = await executor
      .execute(request(objs, objsRoot, command(argv, ["big.bin"]), "other", { maxOutputBytes: 4096 }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringMatching(/big\.bin is 5000 bytes/) });
  });
});

describe("a full disk under the sandboxes", () => {
  // Needs root to mount a small tmpfs as the executor's work folder; skipped otherwise.
  it("a tool that finds no room for its output is this machine's failure (exit 3, RESOURCE_EXHAUSTED, the folder named), not the project's", async (ctx) => {
    const mnt = join(tmp, "small");
    await fsp.mkdir(mnt);
    const mounted = await execa("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { reject: false });
    if (mounted.exitCode !== 0) ctx.skip(`cannot mount a tmpfs here: ${mounted.stderr.trim()}`);
    try {
      const full = new LocalExecutor({ store, workDir: mnt, workerName: "full-node" });
      const root = await newProject({ "in.txt": "x\n" });
      const inputRoot = await uploadDir(root);
      const argv = ["sh", "-c", "head -c 4194304 /dev/zero > big.bin"];
      const err = await full.execute(request(root, inputRoot, command(argv, ["big.bin"]), "other")).catch((e: unknown) => e);
      await full.close();
      expect(err).toMatchObject({ code: Status.RESOURCE_EXHAUSTED, exitCode: 3, message: expect.stringContaining(mnt) });
      expect(isInfrastructureError(err)).toBe(true);
    } finally {
      await execa("umount", [mnt], { reject: false });
    }
  });
});

describe("sandbox violations", () => {
  it("refuses an output that leaves the project as the command's error (exit 1, named), before running anything", async () => {
    const proj = await newProject({ "x.c": X_C, "sub/.keep": "" });
    const root = await uploadDir(proj);
    const marker = join(tmp, "ran");
    for (const [bad, wd] of [["../x.o", ""], ["sub/../../x.o", ""], ["../../x.o", "sub"]] as const) {
      for (const kind of ["other", "compile"]) {
        const argv = kind === "compile" ? ["gcc", "-c", "x.c", "-o", bad] : ["touch", marker];
        const err = await executor.execute(request(proj, root, command(argv, [bad], wd), kind)).catch((e: unknown) => e);
        expect(err).toMatchObject({ exitCode: ExitCode.BUILD_FAILED, message: expect.stringContaining(`"${bad}"`) });
        expect((err as Error).message).toMatch(/leaves the project/);
        expect(isInfrastructureError(err)).toBe(false);
      }
    }
    const err = await executor.execute(request(proj, root, command(["touch", marker], ["/tmp/x.o"]), "other")).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: ExitCode.BUILD_FAILED, message: expect.stringMatching(/must be relative/) });
    expect(isInfrastructureError(err)).toBe(false);
    await expect(fsp.stat(marker)).rejects.toThrow();
  });

  it("runs a tool whose output is in a sibling of its cwd, inside the project (../lib/out.txt from programs/)", async () => {
    const proj = await newProject({ "lib/in.txt": "hello\n", "programs/.keep": "" });
    const root = await uploadDir(proj);
    const out = await executor.execute(request(proj, root, command(["cp", "../lib/in.txt", "../lib/out.txt"], ["../lib/out.txt"], "programs"), "other"));
    expect(out.result.exitCode).toBe(0);
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["../lib/out.txt"]);
    expect((await blob(out.result.outputFiles[0]!.digest)).toString()).toBe("hello\n");
  });

  it("leaves out symlinks that escape the input root or loop, and still runs", async () => {
    const proj = await newProject({ "x.c": X_C, "a.h": A_H });
    await fsp.symlink("../../../etc/passwd", join(proj, "evil"));
    await fsp.symlink("loop2", join(proj, "loop1"));
    await fsp.symlink("loop1", join(proj, "loop2"));
    const root = await uploadDir(proj);
    const out = await executor.execute(request(proj, root, command(["gcc", "-c", "x.c", "-o", "x.o"], ["x.o"]), "compile"));
    expect(out.result.exitCode).toBe(0);
    const ctx = join(await fsp.realpath(join(tmp, "work")), "ctx", root.hash);
    for (const name of ["evil", "loop1", "loop2"]) await expect(fsp.lstat(join(ctx, name))).rejects.toThrow();
  });

  it("keeps a symlink that stays inside the root", async () => {
    const proj = await newProject({ "x.c": X_C, "inc/real.h": A_H });
    await fsp.symlink("inc/real.h", join(proj, "a.h"));
    const root = await uploadDir(proj);
    const out = await executor.execute(request(proj, root, command(["gcc", "-c", "x.c", "-o", "x.o"], ["x.o"]), "compile"));
    expect(out.result.exitCode).toBe(0);
  });
});

describe("argv policy (the node's last wall)", () => {
  it("refuses -wrapper as the user's error: exit 1 naming it, and the wrapper never runs", async () => {
    const marker = join(tmp, "wrapper-ran");
    const proj = await newProject({ "a.c": "int a(void) { return 1; }\n", "w.sh": `#!/bin/sh\ntouch ${marker}\nexec "$@"\n` });
    await fsp.chmod(join(proj, "w.sh"), 0o755);
    const root = await uploadDir(proj);
    for (const argv of [
      ["gcc", "-O2", "-wrapper", "./w.sh", "-c", "a.c", "-o", "a.o"],
      ["gcc", "-O2", "-wrapper", `${proj}/w.sh`, "-c", "a.c"],
      ["gcc", "-O2", "-B", "./", "-c", "a.c", "-o", "a.o"],
    ]) {
      const out = await executor.execute(request(proj, root, command(argv, ["a.o"]), "compile"));
      expect(out.result.exitCode).toBe(1);
      expect(out.result.outputFiles).toEqual([]);
      expect(out.result.stderrRaw.toString()).toMatch(new RegExp(`refused ${argv[2]}`));
      expect((await blob(out.result.stderrDigest)).equals(out.result.stderrRaw)).toBe(true);
    }
    expect(await fsp.stat(marker).catch(() => undefined)).toBeUndefined();
  });

  it("refuses an archive, a linker map or an object written outside the project, and writes nothing there", async () => {
    const proj = await newProject({ "a.c": "int a(void) { return 1; }\n" });
    await execa("gcc", ["-c", "a.c", "-o", "a.o"], { cwd: proj });
    const root = await uploadDir(proj);
    const outside = join(tmp, `outside-${projectCounter}`);
    for (const [argv, kind] of [
      [["ar", "rcs", `${outside}.a`, "a.o"], "archive"],
      [["ar", "rcs", "lib.a", "a.o", "/etc/hostname"], "archive"],
      [["gcc", "-shared", "-o", "liba.so", "a.o", `-Wl,-Map=${outside}.map`], "link"],
      [["gcc", "-c", "a.c", "-o", `${outside}.o`], "other"],
    ] as const) {
      const out = await executor.execute(request(proj, root, command([...argv], []), kind));
      expect(out.result.exitCode).toBe(1);
      expect(out.result.stderrRaw.toString()).toContain("refused");
    }
    expect((await fsp.readdir(tmp)).filter((n) => n.startsWith("outside-"))).toEqual([]);
  });

  it("refuses an environment that would choose the programs gcc runs", async () => {
    const proj = await newProject({ "a.c": "int a(void) { return 1; }\n" });
    const root = await uploadDir(proj);
    const out = await executor.execute(request(proj, root, command(["gcc", "-c", "a.c", "-o", "a.o"], ["a.o"], "", [{ name: "LD_PRELOAD", value: `${proj}/evil.so` }]), "compile"));
    expect(out.result.exitCode).toBe(1);
    expect(out.result.stderrRaw.toString()).toContain("refused LD_PRELOAD");
  });

  it("expands a response file from the input root and runs what it says; one that hides -wrapper is refused", async () => {
    const proj = await newProject({ "a.c": "int a(void) { return A; }\n", "flags.rsp": "-DA=3 -O2\n", "bad.rsp": "-wrapper ./w.sh\n" });
    const root = await uploadDir(proj);
    const ok = await executor.execute(request(proj, root, command(["gcc", "@flags.rsp", "-c", `${proj}/a.c`, "-o", "a.o"], ["a.o"]), "compile"));
    expect(ok.result.exitCode).toBe(0);
    await execa("gcc", ["-DA=3", "-O2", "-c", `${proj}/a.c`, "-o", "a.o"], { cwd: proj, env: PLAIN_ENV, extendEnv: false });
    expect((await blob(ok.result.outputFiles[0]!.digest)).equals(await fsp.readFile(join(proj, "a.o")))).toBe(true);
    const bad = await executor.execute(request(proj, root, command(["gcc", "@bad.rsp", "-c", "a.c", "-o", "a.o"], ["a.o"]), "compile"));
    expect(bad.result.exitCode).toBe(1);
    expect(bad.result.stderrRaw.toString()).toContain("refused -wrapper");
  });

  it("maps joined in-root paths of a link into its sandbox (-L/abs, -Wl,-T,/abs)", async () => {
    const proj = await newProject({
      "main.c": "int lib(void); int main(void) { return lib() - 7; }\n",
      "lib/l.c": "int lib(void) { return 7; }\n",
    });
    await execa("gcc", ["-c", "main.c", "-o", "main.o"], { cwd: proj });
    await execa("gcc", ["-c", "lib/l.c", "-o", "lib/l.o"], { cwd: proj });
    await execa("ar", ["rcs", "lib/libl.a", "lib/l.o"], { cwd: proj });
    const root = await uploadDir(proj);
    const argv = ["gcc", "-o", `${proj}/app`, `${proj}/main.o`, `-L${proj}/lib`, "-ll", `-Wl,-Map,${proj}/app.map`];
    const out = await executor.execute(request(proj, root, command(argv, ["app", "app.map"]), "link"));
    expect(out.result.stderrRaw.toString()).toBe("");
    expect(out.result.exitCode).toBe(0);
    expect(out.result.outputFiles.map((f) => f.path)).toEqual(["app", "app.map"]);
    expect(await fsp.stat(join(proj, "app.map")).catch(() => undefined)).toBeUndefined();
  });
});
