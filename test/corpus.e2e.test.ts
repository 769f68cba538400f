// Opt-in (ORION_TEST_CORPUS=1, `make test-corpus`; CI runs it): the corpus of real C projects from Debian's source
// packages (scripts/fetch-corpus: configure + make, make with sub-makes and multi-source commands, autotools, CMake,
// several sources per command) built by `orion build` as a user would after the project's own prepare step. Each
// built tree passes the project's check; the compile actions equal the compiles Debian's bear records for the same
// build; a fresh copy at the same path executes nothing.
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, expectBuildOk, orionBuild, outcomes, REPO, Scratch, type OrionEnv } from "./helpers.js";

const ENABLED = process.env.ORION_TEST_CORPUS === "1";
const FETCH = join(REPO, "scripts", "fetch-corpus");
const TIMEOUT = 600_000;

interface Project {
  name: string;
  shape: string;
  prepare: string;
  build: string;
  check: string;
}

/** The corpus as scripts/fetch-corpus lists it (fetching what is missing). */
async function listCorpus(): Promise<Project[]> {
  const r = await execa(FETCH, ["--list"], { env: cleanEnv(), extendEnv: false });
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [name, , , , shape, prepare, build, check] = line.split("|");
      return { name: name!, shape: shape!, prepare: prepare!, build: build!, check: check! };
    });
}

const scratch = new Scratch("corpus");
afterAll(() => scratch.cleanup());

const sh = (cwd: string, line: string) => execa("sh", ["-c", line], { cwd, env: cleanEnv(), extendEnv: false, reject: false, all: true });

/** A fresh extract of the project at `dir`, prepared (configured); returns the directory orion builds. */
async function prepared(p: Project, dir: string): Promise<string> {
  await execa(FETCH, ["--extract", p.name, dir], { env: cleanEnv(), extendEnv: false });
  if (p.prepare !== "-") {
    const r = await sh(dir, p.prepare);
    expect(r.exitCode, `${p.name}: ${p.prepare}\n${r.all}`).toBe(0);
  }
  const cmake = /^cmake --build (\S+)/.exec(p.build);
  return cmake ? join(dir, cmake[1]!) : dir;
}

describe.skipIf(!ENABLED)("the corpus of real projects (ORION_TEST_CORPUS=1)", async () => {
  const projects = ENABLED ? await listCorpus() : [];
  for (const p of projects) {
    it(
      `${p.name} (${p.shape}): builds, passes its check, one action per compile bear records, a fresh copy executes nothing`,
      async () => {
        const tree = join(scratch.root, p.name);
        const env: OrionEnv = { cacheDir: join(scratch.root, `cache-${p.name}`), configHome: scratch.configHome, timeoutMs: TIMEOUT };

        const bearTree = join(scratch.root, `${p.name}-bear`);
        await prepared(p, bearTree);
        const bear = await execa("bear", ["--output", join(bearTree, "bear.json"), "--", "sh", "-c", p.build], { cwd: bearTree, env: cleanEnv(), extendEnv: false, reject: false, all: true });
        expect(bear.exitCode, bear.all).toBe(0);
        const bearCompiles = (JSON.parse(readFileSync(join(bearTree, "bear.json"), "utf8")) as unknown[]).length;

        const dir = await prepared(p, tree);
        const cold = await orionBuild(dir, env);
        expectBuildOk(cold);
        const check = await sh(tree, p.check);
        expect(check.exitCode, `${p.name}: ${p.check}\n${check.all}`).toBe(0);
        const done = outcomes(cold.events);
        const compiles = [...done.executed, ...done.cached].filter((l) => /^(CC|CXX) /.test(l));
        expect(compiles.length, `compile actions vs bear's ${bearCompiles}`).toBe(bearCompiles);

        const again = await prepared(p, tree);
        const warm = await orionBuild(again, env);
        expectBuildOk(warm);
        expect(outcomes(warm.events).executed, "a fresh copy at the same path").toEqual([]);
        // Restored whole (make not run), the CMake tree too: its Makefile2 lists prerequisites in another order after each
        // configure, and cmake and configure write their files in another order; neither changes what make compares.
        expect(warm.summary.replayed ?? false, "restored whole").toBe(true);
        expect((await sh(tree, p.check)).exitCode).toBe(0);
      },
      TIMEOUT,
    );
  }
});
