// Escape tests for the bubblewrap sandbox with real processes: a hostile /bin/sh action run by LocalExecutor must stay inside it.
import * as fsp from "node:fs/promises";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlobStore } from "../cas/index.js";
import type { BlobStore } from "../cas/blob-store.js";
import { Status, digestOf, isInfrastructureError, type Digest } from "../core/index.js";
import { buildTree, type TreeEntry } from "../merkle/index.js";
import { Directory, type Command } from "../gen/orion/v1/remote_execution.js";
import { LocalExecutor, type ExecRequest } from "./local-executor.js";
import { createSandbox, SANDBOX_UID, type ActionSandbox } from "./sandbox.js";

const PATH = "/usr/bin:/bin";

let tmp: string;
let store: BlobStore;
let sandbox: ActionSandbox | undefined;
let unavailable = "";
let executor: LocalExecutor;
let server: Server;
let port = 0;
let connections = 0;
let counter = 0;

/** Why the sandbox cannot run here (tests skip with this reason), or "" when it can. */
beforeAll(async () => {
  tmp = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "orion-sandbox-")));
  store = createBlobStore({ dir: join(tmp, "cas") });
  try {
    sandbox = await createSandbox({ probeDir: join(tmp, "work", "sb"), limits: { maxProcesses: 64 } });
  } catch (err) {
    unavailable = (err as Error).message;
    console.warn(`sandbox tests skipped: ${unavailable}`);
  }
  executor = new LocalExecutor({ store, workDir: join(tmp, "work"), workerName: "sandbox-test", sandbox: async () => sandbox });
  server = createServer((s) => {
    connections++;
    s.end("hello from outside\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await executor?.close();
  await sandbox?.close();
  store?.close();
  server?.close();
  await execa("chmod", ["-R", "u+w", tmp], { reject: false });
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function uploadDir(dir: string): Promise<Digest> {
  const files: [string, TreeEntry][] = [];
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else files.push([relative(dir, full), { digest: await store.putFile(full), executable: ((await fsp.stat(full)).mode & 0o111) !== 0 }]);
    }
  };
  await walk(dir);
  const tree = buildTree(files, { symlinks: [] });
  for (const [, message] of tree.directories) await store.put(Directory.encode(message).finish());
  return tree.root;
}

async function project(files: Record<string, string>, dir = join(tmp, `proj${++counter}`)): Promise<{ dir: string; root: Digest }> {
  for (const [rel, text] of Object.entries(files)) {
    await fsp.mkdir(join(dir, rel, ".."), { recursive: true });
    await fsp.writeFile(join(dir, rel), text, { mode: rel.endsWith(".sh") ? 0o755 : 0o644 });
  }
  return { dir, root: await uploadDir(dir) };
}

function request(dir: string, root: Digest, argv: string[], outputs: string[], kind: string, extra: Partial<ExecRequest> = {}): ExecRequest {
  const command: Command = {
    arguments: argv,
    // HOME only for the shell probes: the argv policy refuses it on a compiler's command (it is not in the key).
    environmentVariables: [
      ...(kind === "compile" ? [] : [{ name: "HOME", value: homedir() }]),
      { name: "LANG", value: "C" },
      { name: "PATH", value: PATH },
    ],
    outputPaths: outputs,
    workingDirectory: "",
    platform: undefined,
  };
  return { actionId: `sb${++counter}`, command, inputRoot: root, projectRoot: dir, kind, timeoutMs: 30_000, ...extra };
}

/** Processes on this machine whose command line contains `marker` (the sandbox's leftovers, if any). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(marker)) found.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The hostile action: tries everything a token holder might, and reports each attempt's outcome. */
const PROBE_SH = (outside: string[], secret: string, port: number) => `#!/bin/bash
exec > out/report.txt 2>&1
echo "uid $(id -u)"
for p in ${outside.map((p) => `'${p}'`).join(" ")}; do
  if echo pwned > "$p" 2>/dev/null; then echo "wrote $p"; else echo "refused $p"; fi
done
if cat /etc/shadow >/dev/null 2>&1; then echo "shadow readable"; else echo "shadow unreadable"; fi
if cat '${secret}' >/dev/null 2>&1; then echo "secret readable"; else echo "secret unreadable"; fi
echo "home: $(ls -A "$HOME" 2>/dev/null | wc -l) entries"
if (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; then echo "connected"; else echo "no network"; fi
echo "me" > out/mine.txt && echo "wrote own output"
`;

describe.skipIf(process.platform !== "linux")("the bubblewrap sandbox", () => {
  it("runs an action as an unprivileged user that can write nowhere but its outputs, read no secret and reach no port", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const secret = join(tmp, "secret.txt");
    await fsp.writeFile(secret, "s3cret");
    const outsideDir = join(tmp, "outside");
    await fsp.mkdir(outsideDir);
    const dir = join(tmp, `proj${++counter}`);
    // Inside, some of these exist as the sandbox's own empty folders (parents of its binds): writes there vanish with it.
    const outside = [join(outsideDir, "escape"), join(dir, "escape"), join(tmp, "work", "escape"), "/usr/escape", "/etc/escape", join(homedir(), ".orion-escape")];
    const { root } = await project({ "probe.sh": PROBE_SH(outside, secret, port), "out/.keep": "" }, dir);
    const out = await executor.execute(request(dir, root, ["./probe.sh"], ["out/report.txt", "out/mine.txt"], "other"));
    expect(out.result.exitCode).toBe(0);
    const report = (await store.get(out.result.outputFiles[0]!.digest!))!.toString();
    expect(report).toContain(`uid ${SANDBOX_UID}`);
    expect(report).not.toMatch(/^uid 0$/m);
    for (const p of outside) expect(existsSync(p), p).toBe(false);
    expect(report).toContain("shadow unreadable");
    expect(report).toContain("secret unreadable");
    expect(report).toContain("home: 0 entries");
    expect(report).toContain("no network");
    expect(connections).toBe(0);
    expect(report).toContain("wrote own output");
    expect((await store.get(out.result.outputFiles[1]!.digest!))!.toString()).toBe("me\n");
  });

  it("keeps a link-like action's inputs (hard links into the store) out of its reach, also beside its outputs", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const { dir, root } = await project({
      "tamper.sh": "#!/bin/sh\nfor f in in.txt lib/near.txt; do chmod 666 $f; echo evil > $f; done 2>/dev/null\necho out > lib/out.txt\n",
      "in.txt": "good\n",
      "lib/near.txt": "near\n",
    });
    const out = await executor.execute(request(dir, root, ["./tamper.sh"], ["lib/out.txt"], "other"));
    expect(out.result.exitCode).toBe(0);
    expect((await store.get(out.result.outputFiles[0]!.digest!))!.toString()).toBe("out\n");
    // Both blobs are still whole: in.txt was read-only, lib/near.txt a private copy.
    for (const text of ["good\n", "near\n"]) expect((await store.get(digestOf(text)))?.toString()).toBe(text);
  });

  it("compiles in the shared context read-only: a compile still works, an #include of /etc/shadow finds no such file", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const { dir, root } = await project({
      "ok.c": "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n",
      "leak.c": '#include "/etc/shadow"\nint x;\n',
    });
    const ok = await executor.execute(request(dir, root, ["gcc", "-O2", "-c", "ok.c", "-o", "ok.o"], ["ok.o"], "compile"));
    expect(ok.result.exitCode).toBe(0);
    expect(ok.result.outputFiles.map((f) => f.path)).toEqual(["ok.o"]);

    const leak = await executor.execute(request(dir, root, ["gcc", "-c", "leak.c", "-o", "leak.o"], ["leak.o"], "compile"));
    expect(leak.result.exitCode).not.toBe(0);
    const stderr = leak.result.stderrRaw.toString();
    expect(stderr).toContain("/etc/shadow: No such file or directory");
    expect(stderr).not.toMatch(/root:[^:]*:\d+/);
  });

  it("produces the same object and depfile as gcc run in the project (paths inside are the paths outside)", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const { dir, root } = await project({ "src/x.c": '#include "x.h"\nint f(void) { return X; }\n', "src/x.h": "#define X 3\n" });
    const argv = ["gcc", "-g", "-O2", "-MD", "-c", "x.c", "-o", "x.o"];
    const req = request(dir, root, argv, ["x.o", "x.d"], "compile");
    const out = await executor.execute({ ...req, command: { ...req.command, workingDirectory: "src" } });
    expect(out.result.exitCode).toBe(0);
    await execa(argv[0]!, argv.slice(1), { cwd: join(dir, "src"), env: { PATH, LANG: "C" }, extendEnv: false });
    const [obj] = out.result.outputFiles;
    expect((await store.get(obj!.digest!))!.equals(await fsp.readFile(join(dir, "src/x.o")))).toBe(true);
    expect(out.depfile).toBe(await fsp.readFile(join(dir, "src/x.d"), "utf8"));
  });

  it("stops a fork bomb at the process limit, and leaves nothing running", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    if (!sandbox?.description.includes("pids cgroup")) ctx.skip(`no per-action process limit here: ${sandbox?.description}`);
    const marker = `31.${process.pid}${counter}`;
    // Only shell builtins after the sleeps start: once the limit is reached, nothing more can fork (dash gives up at once, bash would retry).
    const { dir, root } = await project({
      "bomb.sh": `#!/bin/sh\n( i=0; while [ $i -lt 200 ]; do sleep ${marker} & i=$((i+1)); echo $i > out/started; done ) 2>/dev/null\nexit 0\n`,
      "out/.keep": "",
    });
    const out = await executor.execute(request(dir, root, ["./bomb.sh"], ["out/started"], "other"));
    expect(out.result.exitCode).toBe(0);
    const started = Number((await store.get(out.result.outputFiles[0]!.digest!))!.toString());
    // pids.max 64 counts bwrap, its init, the shells and the sleeps: far fewer than the 200 asked for.
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(64);
    // The action's end tore its pid namespace down: no sleep survived it (the last ones may take a moment to be reaped).
    for (let i = 0; i < 50 && processesWith(marker).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith(marker)).toEqual([]);
  });

  it("kills everything inside the sandbox on timeout", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const marker = `32.${process.pid}${counter}`;
    const { dir, root } = await project({ "hang.sh": `#!/bin/sh\n(setsid sleep ${marker} &)\nsleep ${marker}\n` });
    const err = await executor.execute(request(dir, root, ["./hang.sh"], [], "other", { timeoutMs: 500 })).catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(Status.DEADLINE_EXCEEDED);
    for (let i = 0; i < 50 && processesWith(marker).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith(marker)).toEqual([]);
  });

  it("reports a tool missing inside the sandbox as no such program, and a broken sandbox as the machine's fault", async (ctx) => {
    if (!sandbox) ctx.skip(unavailable);
    const { dir, root } = await project({ "a.txt": "a\n" });
    const missing = await executor.execute(request(dir, root, ["/nonexistent/tool"], [], "other")).catch((e: unknown) => e);
    expect((missing as Error).message).toContain("no such program");
    // A working directory that is there outside but cannot be bound (bwrap's own failure): infrastructure, retried elsewhere.
    const broken = await createSandbox({ probeDir: join(tmp, "work", "sb"), bwrap: "/bin/false" }).catch((e: unknown) => e);
    expect(isInfrastructureError(broken)).toBe(true);
    expect((broken as Error).message).toContain("cannot sandbox actions");
  });
});
