// End-to-end: `orion build` with its client cache (ORION_CACHE_DIR) on a small tmpfs that fills up — while the stores
// open, while the source context uploads, while actions store their outputs. Each ends with exit 3, one line naming the
// store's folder and the space it needs, and the summary; never exit 13 without a summary, never exit 2 blaming a source
// file. Then the same cache, given room again, builds the tree exactly as make does. Needs root (mount); skipped otherwise.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFixture, differingFiles, lines, makeReference, type OrionBuild, orionBuild, runOrion, runProgram, Scratch } from "./helpers.js";

const scratch = new Scratch("disk-full");
const mnt = join(scratch.root, "tmpfs");
const PROGRAMS = ["app1/app1", "app2/app2"];

function unmount(): void {
  try {
    execFileSync("umount", [mnt], { stdio: "ignore" });
  } catch {
    // Not mounted.
  }
}

/** Mounts a tmpfs of `size` at `mnt` (replacing the last one); why it cannot, when it cannot. */
function mountTmpfs(size: string): string | undefined {
  unmount();
  try {
    mkdirSync(mnt, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): ${String((err as { stderr?: unknown }).stderr ?? err).trim()}`;
  }
}

const cannotMount = process.getuid?.() === 0 ? mountTmpfs("64k") : "not root: cannot mount a small tmpfs";
if (cannotMount) console.warn(`disk-full e2e skipped: ${cannotMount}`);

afterAll(() => {
  unmount();
  scratch.cleanup();
});

/** The build's stderr says exactly one thing of its own about the full disk: the store's folder under the tmpfs and the space it needs. */
function expectOneDiskFullLine(b: { stderr: string; exitCode: number }): void {
  const ours = lines(b.stderr).filter((l) => l.startsWith("orion:"));
  expect(ours, b.stderr).toHaveLength(1);
  expect(ours[0]).toMatch(new RegExp(`^orion: no space left for .+ in ${mnt}(/[^ ]*)?: it needs (at least [0-9.]+ [KMG]?i?B more|more than the [0-9.]+ [KMG]?i?B free)`));
  expect(b.stderr).not.toMatch(/cannot read file|internal error/);
}

describe.skipIf(!!cannotMount)("a client cache on a full disk", () => {
  let reference: { outputs: Map<string, Buffer>; stdout: Map<string, string> };
  const tree = join(scratch.root, "multi-c");
  const cacheDir = join(mnt, "cache");
  const env = () => ({ cacheDir, configHome: scratch.configHome, driver: "graph" as const });

  beforeAll(async () => {
    reference = await makeReference("multi-c", tree, PROGRAMS);
  });

  // A cold multi-c build needs about 3 MB of cache. These sizes fill up, on this machine, while the stores open (300k)
  // and while the source context uploads (1m); the last test's 2m, while actions store their outputs. The checks hold
  // wherever it fills.
  for (const size of ["300k", "1m"]) {
    it(`ends the build with exit 3, one line and the summary (tmpfs of ${size})`, async () => {
      expect(mountTmpfs(size)).toBeUndefined();
      copyFixture("multi-c", tree);
      const b: OrionBuild = await orionBuild(tree, env());
      expect(b.exitCode, b.stderr).toBe(3);
      expectOneDiskFullLine(b);
      const last = JSON.parse(lines(b.stdout).at(-1)!);
      expect(last.type).toBe("summary");
      expect(b.summary.actions).toBe(b.summary.executed + b.summary.cacheHits + b.summary.failed + b.summary.skipped);
      expect(b.summary.skipped).toBeGreaterThan(0);
    });
  }

  it("fills up mid-build (the line on stderr, the summary line on stdout), then builds as make does once there is room", async () => {
    expect(mountTmpfs("2m")).toBeUndefined();
    copyFixture("multi-c", tree);
    const full = await runOrion(["build", tree], env());
    expect(full.exitCode, full.stderr).toBe(3);
    expectOneDiskFullLine(full);
    expect(lines(full.stdout).at(-1)).toMatch(/^orion: 32 actions: \d+ executed, \d+ cached, \d+ failed, \d+ skipped; 0 host steps; /);

    // The same file system grown: what the failed build stored is read again, and nothing of it may be corrupt.
    execFileSync("mount", ["-o", "remount,size=16m", mnt]);
    copyFixture("multi-c", tree);
    const b = await orionBuild(tree, env());
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.summary.failed + b.summary.skipped).toBe(0);
    expect(differingFiles(tree, reference.outputs)).toEqual([]);
    for (const [p, out] of reference.stdout) expect(await runProgram(join(tree, p))).toBe(out);
  });
});
