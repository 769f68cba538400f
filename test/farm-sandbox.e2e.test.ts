// End-to-end: hostile code that really runs on a farm node (an operator-configured `ar` toolchain that is a probing script) stays inside the node's bubblewrap sandbox.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orionBuild, Scratch, type OrionEnv } from "./helpers.js";
import { type Daemon, probeSandbox, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("farm-sandbox");
const TOKEN = "farm-sandbox-e2e-token";

/** Why bubblewrap cannot run here ("" when it can): the test then skips with this reason. */
let unavailable = "";
/** A pids cgroup can be made per action here (else a fork loop is bounded only per user). */
let perActionLimit = false;
let head: Daemon | undefined;
let node: Daemon | undefined;
let address = "";
let port = 0;
/** The operator's toolchain folder: its bin/ar is the hostile script the node advertises as `ar`. */
const toolDir = join(scratch.root, "opt-hostile");
const secret = join(scratch.root, "secret.txt");
const outside = [
  join(scratch.root, "farm-escape"),
  join(scratch.root, "node", "escape"),
  join(toolDir, "escape"),
  "/usr/farm-escape",
  join(homedir(), ".orion-farm-sandbox-escape"),
];
const client: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome, driver: "graph" };

/**
 * The `ar` the node was configured with: it probes what it can reach, writing REPORT lines to stderr and to a file it
 * archives with the members (so the report comes back in the action's declared output), starts up to 300 sleeps at once, then
 * runs the real ar. It also tries writing above its own folder.
 */
function hostileAr(): string {
  const bin = join(toolDir, "bin");
  mkdirSync(bin, { recursive: true });
  const path = join(bin, "ar");
  writeFileSync(
    path,
    `#!/bin/bash
r=/tmp/report.txt
{
echo "REPORT uid $(id -u)"
for p in ${outside.map((p) => `'${p}'`).join(" ")} "$PWD/../escape"; do
  if echo pwned > "$p" 2>/dev/null; then echo "REPORT wrote $p"; else echo "REPORT refused $p"; fi
done
if cat /etc/shadow >/dev/null 2>&1; then echo "REPORT shadow readable"; else echo "REPORT shadow unreadable"; fi
if cat '${secret}' >/dev/null 2>&1; then echo "REPORT secret readable"; else echo "REPORT secret unreadable"; fi
echo "REPORT home $(ls -A '${homedir()}' 2>/dev/null | wc -l) entries"
if (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; then echo "REPORT connected"; else echo "REPORT no network"; fi
} > $r 2>/dev/null
# A fork loop of 300 sleeps in dash, which gives up at the first failed fork (bash would retry for seconds): each sleep
# outlives the loop, so the count is how many processes it could have at once. They end by themselves, then ar runs.
/bin/sh -c 'n=0; while [ $n -lt 300 ]; do sleep 3 & n=$((n+1)); echo $n > /tmp/started; done' 2>/dev/null
read started < /tmp/started
echo "REPORT started $started sleeps" >> $r
until sleep 0 2>/dev/null; do :; done
cat $r >&2
exec /usr/bin/ar "$@" $r
`,
    { mode: 0o755 },
  );
  return path;
}

function project(): string {
  const dir = join(scratch.root, "project");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "m.txt"), "a member\n");
  writeFileSync(join(dir, "Makefile"), "liba.a: m.txt\n\tar rc liba.a m.txt\n");
  return dir;
}

beforeAll(async () => {
  ({ unavailable, perActionLimit } = await probeSandbox(scratch, "farm sandbox e2e test"));
  if (unavailable) return;
  writeFileSync(secret, "s3cret");
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  // The script tries the head's own gRPC port, which this test can reach.
  port = Number(address.split(":")[1]);
  const ar = hostileAr();
  // The operator's choice: this node's only toolchain is the script, as `ar`.
  node = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "1", "--data-dir", join(scratch.root, "node"), "--toolchain", `ar=${ar}`]);
}, 60_000);

afterAll(async () => {
  if (node) await stopDaemon(node);
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("hostile code on a farm node", () => {
  it("an operator's ar that probes runs on the node, confined: uid, files, $HOME, the head's port, a fork loop", async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    // Outside the sandbox the head's port answers: "no network" below is the sandbox, not a wrong port.
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => (s.end(), resolve()));
      s.on("error", reject);
    });
    const dir = project();
    // The client's `ar` is the same program (found on PATH), so the action names the node's toolchain digest.
    const r = await orionBuild(dir, { ...client, env: { PATH: `${join(toolDir, "bin")}:${process.env.PATH ?? ""}` } }, ["--head", address, "--token", TOKEN, "--no-cache"]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.summary.executed).toBe(1);
    // The report travelled back inside the declared output, so the script did run (on the node: nothing else has it).
    const report = execFileSync("/usr/bin/ar", ["p", join(dir, "liba.a"), "report.txt"], { encoding: "utf8" });
    expect(execFileSync("/usr/bin/ar", ["p", join(dir, "liba.a"), "m.txt"], { encoding: "utf8" })).toBe("a member\n");
    expect(report).toContain("REPORT uid 65534");
    expect(report).not.toMatch(/REPORT uid 0\b/);
    // Nothing the script wrote reached the machine. A write under /tmp may "succeed" inside the sandbox: bwrap made
    // the parent folders of the action's binds in the sandbox's own tmpfs, which is gone with it.
    for (const p of [...outside, join(scratch.root, "node", "work", "sb", "escape")]) expect(existsSync(p), p).toBe(false);
    for (const p of outside.filter((p) => !p.startsWith(scratch.root + "/") || p.startsWith(toolDir))) expect(report).toContain(`REPORT refused ${p}`);
    expect(report).toContain("REPORT shadow unreadable");
    expect(report).toContain("REPORT secret unreadable");
    expect(report).toContain("REPORT home 0 entries");
    expect(report).toContain("REPORT no network");
    expect(existsSync(join(dir, "escape"))).toBe(false);
    const started = Number(/REPORT started (\d+) sleeps/.exec(report)?.[1]);
    expect(started).toBeGreaterThan(0);
    // The node's default pids cgroup limit is 256 per action: the loop of 300 never got there.
    if (perActionLimit) expect(started).toBeLessThan(256);
    else console.warn(`no pids cgroup here: the fork loop started ${started} sleeps (bounded only per user)`);
    // The script's stderr, as the client prints it, is the same report (the node maps its sandbox folder back to the
    // project's path in captured output, so "$PWD/../escape" reads as the project's parent there).
    if (r.stderr.includes("REPORT")) {
      expect(r.stderr).toContain("REPORT uid 65534");
      expect(r.stderr).toContain("REPORT no network");
    }
  }, 30_000);
});
