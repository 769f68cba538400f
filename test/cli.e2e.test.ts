// End-to-end: the real `orion` CLI's usage and configuration errors (exit 2, one line naming the
// culprit), help, and `orion graph`.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { copyFixture, lines, type OrionEnv, type ProcResult, runOrion, Scratch } from "./helpers.js";

const scratch = new Scratch("cli");
afterAll(() => scratch.cleanup());

const orion: OrionEnv = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome };
/** A pristine multi-c copy that nothing builds (graph and usage errors only). */
const multiC = copyFixture("multi-c", join(scratch.root, "multi-c"));

function expectUsageError(r: ProcResult, mentions: RegExp): void {
  expect(r.exitCode, `${r.command}: stderr=${r.stderr}`).toBe(2);
  const errLines = lines(r.stderr);
  expect(errLines, `${r.command}: exactly one line on stderr`).toHaveLength(1);
  expect(errLines[0]).toMatch(mentions);
}

describe("11. usage and configuration errors exit 2 with one line", () => {
  it("an unknown flag", async () => {
    expectUsageError(await runOrion(["build", "--bogus"], orion), /--bogus/);
  });

  it("--jobs 0 and --jobs x", async () => {
    expectUsageError(await runOrion(["build", multiC, "--jobs", "0"], orion), /--jobs/);
    expectUsageError(await runOrion(["build", multiC, "--jobs", "x"], orion), /--jobs/);
  });

  it("a DIR that does not exist", async () => {
    const missing = join(scratch.root, "no-such-dir");
    expectUsageError(await runOrion(["build", missing], orion), new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  it("a DIR without a Makefile", async () => {
    const empty = join(scratch.root, "empty-project");
    mkdirSync(empty, { recursive: true });
    const r = await runOrion(["build", empty], orion);
    expectUsageError(r, /Makefile/);
    expect(r.stderr).toContain(empty);
  });

  it("ORION_JOBS=abc", async () => {
    expectUsageError(await runOrion(["build", multiC], { ...orion, env: { ORION_JOBS: "abc" } }), /jobs/i);
  });

  it("ORION_NO_NODE_TIMEOUT=soon (not a duration)", async () => {
    expectUsageError(await runOrion(["build", multiC], { ...orion, env: { ORION_NO_NODE_TIMEOUT: "soon" } }), /noNodeTimeout: expected a duration of at most 7d such as 500ms, 60s, 2m, 1h/);
  });

  it("an unknown key in the project's .orion.json", async () => {
    const proj = copyFixture("multi-c", join(scratch.root, "multi-c-badconfig"));
    writeFileSync(join(proj, ".orion.json"), JSON.stringify({ jobz: 4 }));
    const r = await runOrion(["build", proj], orion);
    expectUsageError(r, /jobz/);
    expect(r.stderr).toContain(".orion.json");
  });

  it("14. an unwritable cache dir (under a regular file)", async () => {
    const file = join(scratch.root, "a-regular-file");
    writeFileSync(file, "not a directory\n");
    const cacheDir = join(file, "cache");
    const r = await runOrion(["build", multiC], { ...orion, cacheDir });
    expectUsageError(r, new RegExp(cacheDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  it("14b. a cache dir the kernel refuses to create (under /proc): one line, exit 2 — not a hang", async () => {
    const r = await runOrion(["build", multiC], { ...orion, cacheDir: "/proc/orion-no-such-dir/cache" });
    expectUsageError(r, /\/proc\/orion-no-such-dir/);
  });
});

describe("11. help and graph", () => {
  it("orion --help exits 0 and mentions --json", async () => {
    const r = await runOrion(["--help"], orion);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("--json");
  });

  it("orion build --help exits 0 and mentions --json", async () => {
    const r = await runOrion(["build", "--help"], orion);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("--json");
  });

  it("orion graph DIR --format json lists the 32 commands of multi-c", async () => {
    const r = await runOrion(["graph", multiC, "--format", "json"], orion);
    expect(r.exitCode, r.stderr).toBe(0);
    const graph = JSON.parse(r.stdout) as { commands: { kind: string }[] };
    expect(graph.commands).toHaveLength(32);
    const count = (k: string) => graph.commands.filter((c) => c.kind === k).length;
    expect([count("compile"), count("archive"), count("link")]).toEqual([28, 2, 2]);
  });

  it("orion graph DIR --format dot starts with digraph", async () => {
    const r = await runOrion(["graph", multiC, "--format", "dot"], orion);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trimStart().startsWith("digraph")).toBe(true);
  });
});
