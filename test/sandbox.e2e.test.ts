// End-to-end: hostile compiles through a real farm (head + node processes) and the embedded `orion build` stay inside the node's bubblewrap sandbox.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orionBuild, runOrion, Scratch, type OrionEnv } from "./helpers.js";
import { type Daemon, probeSandbox, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("sandbox");
const TOKEN = "sandbox-e2e-token";

/** Why bubblewrap cannot run here ("" when it can): every test then skips with this reason. */
let unavailable = "";
/** A pids cgroup can be made per action here (else a fork bomb is bounded only per user). */
let perActionLimit = false;
let head: Daemon | undefined;
let node: Daemon | undefined;
let address = "";
let server: Server;
let port = 0;
let connections = 0;
const client = (name: string): OrionEnv => ({ cacheDir: join(scratch.root, `cache-${name}`), configHome: scratch.configHome, driver: "graph" });

/**
 * A compile whose `-wrapper` runs a script before cc1 and as (what a token holder did to run code as root on a
 * node): it reports on stderr what it could do, starts 300 sleeps, waits for the limit to free up, then compiles.
 */
function hostileProject(name: string, outside: string[], secret: string): string {
  const dir = join(scratch.root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "a.c"), "int a(void) { return 1; }\n");
  writeFileSync(
    join(dir, "w.sh"),
    `#!/bin/sh
{
echo "REPORT uid $(id -u)"
for p in ${outside.map((p) => `'${p}'`).join(" ")}; do
  if echo pwned > "$p" 2>/dev/null; then echo "REPORT wrote $p"; else echo "REPORT refused $p"; fi
done
if cat /etc/shadow >/dev/null 2>&1; then echo "REPORT shadow readable"; else echo "REPORT shadow unreadable"; fi
if cat '${secret}' >/dev/null 2>&1; then echo "REPORT secret readable"; else echo "REPORT secret unreadable"; fi
echo "REPORT home $(ls -A '${homedir()}' 2>/dev/null | wc -l) entries"
if bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null; then echo "REPORT connected"; else echo "REPORT no network"; fi
} >&2
# The fork bomb (before cc1 only): only builtins once the sleeps run; each ends by itself, so the compile goes on after.
case "$1" in *cc1*)
  n=0
  ( while [ $n -lt 300 ]; do sleep 1.5 & n=$((n+1)); echo $n > /tmp/started; done ) 2>/dev/null
  read started < /tmp/started
  echo "REPORT started $started sleeps" >&2
  until sleep 0 2>/dev/null; do :; done
esac
exec "$@"
`,
    { mode: 0o755 },
  );
  writeFileSync(join(dir, "Makefile"), "a.o: a.c w.sh\n\tgcc -O2 -wrapper ./w.sh -c a.c -o a.o\n");
  return dir;
}

function leakProject(name: string): string {
  const dir = join(scratch.root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "leak.c"), '#include "/etc/shadow"\nint x;\n');
  writeFileSync(join(dir, "Makefile"), "leak.o: leak.c\n\tgcc -c leak.c -o leak.o\n");
  return dir;
}

/** Checks one hostile build: either the argv check refused -wrapper before anything ran, or the script ran confined. */
function expectConfined(r: { exitCode: number; stderr: string; events: unknown[] }, outside: string[]): void {
  for (const p of outside) expect(existsSync(p), p).toBe(false);
  expect(connections).toBe(0);
  // Refused up front by the argv policy (the head names it in the failed action's event): nothing ran.
  if (r.exitCode !== 0 && /refused -wrapper/.test(r.stderr + JSON.stringify(r.events)) && !r.stderr.includes("REPORT")) return;
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stderr).toContain("REPORT uid 65534");
  expect(r.stderr).not.toMatch(/REPORT uid 0\b/);
  expect(r.stderr).toContain("REPORT shadow unreadable");
  expect(r.stderr).toContain("REPORT secret unreadable");
  expect(r.stderr).toContain("REPORT home 0 entries");
  expect(r.stderr).toContain("REPORT no network");
  const started = [...r.stderr.matchAll(/REPORT started (\d+) sleeps/g)].map((m) => Number(m[1]));
  expect(started.length).toBeGreaterThan(0);
  // The node's default pids cgroup limit is 256 per action: the loop of 300 never got there.
  if (perActionLimit) for (const n of started) expect(n).toBeLessThan(256);
}

beforeAll(async () => {
  ({ unavailable, perActionLimit } = await probeSandbox(scratch, "sandbox e2e tests"));
  if (unavailable) return;
  server = createServer((s) => {
    connections++;
    s.end();
  });
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  // The action tries the head's own port: a sandboxed action has no network at all.
  port = Number(address.split(":")[1]);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  node = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--data-dir", join(scratch.root, "node")]);
}, 60_000);

afterAll(async () => {
  if (node) await stopDaemon(node);
  if (head) await stopDaemon(head);
  server?.close();
  scratch.cleanup();
});

describe("the sandbox through orion build", () => {
  const secret = join(scratch.root, "secret.txt");
  writeFileSync(secret, "s3cret");

  it("a farm node runs a hostile compile confined, and says so in orion status", async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const st = await runOrion(["status", "--head", address, "--token", TOKEN, "--json"], client("farm"));
    const nodes = (JSON.parse(st.stdout) as { nodes: { sandbox: string }[] }).nodes;
    expect(nodes[0]?.sandbox).toMatch(/^bwrap uid 65534, no network/);
    const text = await runOrion(["status", "--head", address, "--token", TOKEN], client("farm"));
    expect(text.stdout).toContain("sandboxed: bwrap");

    const outside = [join(scratch.root, "farm-escape"), join(scratch.root, "node", "escape"), "/usr/farm-escape", join(homedir(), ".orion-farm-escape")];
    const dir = hostileProject("hostile-farm", outside, secret);
    const r = await orionBuild(dir, client("farm"), ["--head", address, "--token", TOKEN, "--no-cache"]);
    expectConfined(r, outside);
    expect(existsSync(join(dir, "a.o")) || r.exitCode !== 0).toBe(true);

    const leak = await orionBuild(leakProject("leak-farm"), client("farm"), ["--head", address, "--token", TOKEN, "--no-cache"]);
    expect(leak.exitCode, leak.stdout + leak.stderr).toBe(1);
    // The compiler's own failure, not the machine's: gcc found no such file.
    const failed = leak.events.find((e) => e.type === "action" && e.state === "failed");
    expect(failed?.infra).toBeFalsy();
    expect(failed?.error).toBe("exit code 1");
    // A failed farm compile's diagnostics are printed as its result arrives, which may be after the summary (the client
    // does not wait for them): when they are there, they are gcc's "No such file".
    if (leak.stderr) expect(leak.stderr).toContain("/etc/shadow: No such file or directory");
    expect(leak.stderr).not.toMatch(/root:[^:]*:\d+/);
  }, 60_000);

  it("the embedded node runs the same compile confined; --unsandboxed runs it as this user", async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const outside = [join(scratch.root, "embedded-escape"), "/usr/embedded-escape", join(homedir(), ".orion-embedded-escape")];
    const dir = hostileProject("hostile-embedded", outside, secret);
    const r = await orionBuild(dir, client("embedded"), ["--no-cache"]);
    expectConfined(r, outside);
    expect(r.stderr).not.toContain("actions run unsandboxed");

    const leak = await orionBuild(leakProject("leak-embedded"), client("embedded"), ["--no-cache"]);
    expect(leak.exitCode).toBe(1);
    expect(leak.stderr).toContain("/etc/shadow: No such file or directory");

    // The opt-out (benchmarks): the compile runs as the user who started orion build.
    const plain = await orionBuild(dir, client("embedded"), ["--no-cache", "--unsandboxed"]);
    if (plain.stderr.includes("REPORT")) expect(plain.stderr).toContain(`REPORT uid ${process.getuid?.()}`);
  }, 60_000);
});

describe("an embedded build where bwrap cannot run", () => {
  it("warns once on stderr and builds unsandboxed", async () => {
    // A PATH with the build's tools but no bwrap: the probe fails as on a machine without bubblewrap.
    const bin = scratch.dir("bin-nobwrap");
    for (const tool of ["make", "gcc", "cc", "sh", "ar", "as", "ld"]) {
      const real = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => existsSync(p));
      if (real) symlinkSync(real, join(bin, tool));
    }
    const dir = join(scratch.root, "two-files");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a.c"), "int a(void) { return 1; }\n");
    writeFileSync(join(dir, "b.c"), "int b(void) { return 2; }\n");
    writeFileSync(join(dir, "Makefile"), "all: a.o b.o\n%.o: %.c\n\tgcc -c $< -o $@\n");
    const r = await orionBuild(dir, { ...client("nobwrap-embedded"), env: { PATH: bin } }, ["--no-cache"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.summary.executed).toBe(2);
    const warnings = r.stderr.split("\n").filter((l) => l.includes("actions run unsandboxed"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^orion: warning: actions run unsandboxed: bwrap \(bubblewrap\) is not installed/);
    // The opt-out says it on purpose: no warning.
    const quiet = await orionBuild(dir, { ...client("nobwrap-embedded"), env: { PATH: bin, ORION_UNSANDBOXED: "1" } }, ["--no-cache"]);
    expect(quiet.exitCode, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toContain("unsandboxed");
  }, 60_000);
});

describe("a node that cannot sandbox", () => {
  it("refuses to start with one line and exit 3, unless --unsandboxed", async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    // No bwrap on PATH: the probe fails as it would on a machine without bubblewrap.
    const env = { PATH: "/nonexistent", ORION_HEAD: address, ORION_TOKEN: TOKEN };
    const r = await runOrion(["node", "--data-dir", join(scratch.root, "node-nobwrap"), "--toolchain", `gcc=/usr/bin/gcc`], { ...client("nobwrap"), env });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("bwrap (bubblewrap) is not installed");
    expect(r.stderr).toContain("--unsandboxed");
  }, 30_000);
});
