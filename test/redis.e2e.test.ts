// End-to-end, opt-in (ORION_TEST_REDIS=1, `make test-redis`): Redis 7.0.15, unmodified, built by `orion build`
// cold and then warm in a fresh extract at the same path; the redis-server each build writes must answer PING.
// Minutes of CPU on a small machine, and a download the first time (scripts/fetch-redis): not in the default suite.
import { createServer } from "node:net";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, type OrionBuild, orionBuild, type OrionEnv, outcomes, REPO, Scratch } from "./helpers.js";

const enabled = process.env.ORION_TEST_REDIS === "1";
/** A cold Redis build takes 1.5–2.5 min through orion on a shared 2-core machine. */
const BUILD_MS = 8 * 60_000;

/** What a warm build of a fresh extract still executes: nothing. mkreleasehdr.sh writes release.h (a build id from the
 * date and host) and touches release.c; the step cache restores both as the cold build left them (the preload tracer
 * hashes release.c before `touch` changes it in place), so release.o, the links and the `-MM *.c` over src/ are hits. */
const WARM_EXECUTED: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function extractRedis(dest: string): Promise<void> {
  await execa(join(REPO, "scripts", "fetch-redis"), ["--extract", dest], { stdio: ["ignore", "ignore", "pipe"] });
}

/** Starts the tree's redis-server on a free loopback port, PINGs it until it answers (≤ 10 s), stops it; returns the answer. */
async function pingRedis(tree: string): Promise<string> {
  const port = await freePort();
  const server: ResultPromise = execa(join(tree, "src/redis-server"), ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], {
    env: cleanEnv(),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
  });
  let reply = "";
  try {
    for (let i = 0; i < 50 && reply !== "PONG" && server.exitCode === null; i++) {
      const r = await execa(join(tree, "src/redis-cli"), ["-p", String(port), "ping"], { env: cleanEnv(), extendEnv: false, reject: false, timeout: 5_000 });
      reply = String(r.stdout).trim();
      if (reply !== "PONG") await new Promise((res) => setTimeout(res, 200));
    }
    await execa(join(tree, "src/redis-cli"), ["-p", String(port), "shutdown", "nosave"], { env: cleanEnv(), extendEnv: false, reject: false, timeout: 5_000 });
  } finally {
    server.kill("SIGKILL");
    await server;
  }
  return reply;
}

function describeBuild(b: OrionBuild): string {
  return `${b.command} exited ${b.exitCode}: ${JSON.stringify(b.summary)}\n${b.stderr.split("\n").slice(-30).join("\n")}`;
}

describe.skipIf(!enabled)("Redis 7.0.15 through orion build (ORION_TEST_REDIS=1)", () => {
  // Made in beforeAll: a skipped suite still runs this body (to collect its tests) but never its afterAll.
  let scratch: Scratch;
  // One path for both builds: Redis compiles with -g and no prefix map, so objects embed the absolute directory.
  let tree: string;
  let orion: OrionEnv;
  let cold: OrionBuild | undefined;
  beforeAll(() => {
    scratch = new Scratch("redis");
    tree = join(scratch.root, "redis");
    orion = { cacheDir: join(scratch.root, "cache"), configHome: scratch.configHome, timeoutMs: BUILD_MS - 30_000 };
  });
  afterAll(() => scratch?.cleanup());

  it(
    "cold: every action executes, exit 0, and redis-server answers PING",
    async () => {
      await extractRedis(tree);
      cold = await orionBuild(tree, orion);
      expect(cold.exitCode, describeBuild(cold)).toBe(0);
      expect(cold.summary.failed).toBe(0);
      expect(cold.summary.skipped).toBe(0);
      expect(cold.summary.cacheHits).toBe(0);
      expect(cold.summary.executed).toBe(cold.summary.actions);
      // 147 actions and 48 host steps at the time of writing; the graph may grow, not collapse.
      expect(cold.summary.actions).toBeGreaterThan(100);
      expect(await pingRedis(tree)).toBe("PONG");
    },
    BUILD_MS,
  );

  it(
    "warm, in a fresh extract at the same path: every action a cache hit, every step restored, and redis-server answers PING; then restored whole, make not run",
    async () => {
      expect(cold?.exitCode, "needs the cold build").toBe(0);
      await extractRedis(tree);
      // Action by action first (the whole-build restore turned off): what an edited tree's build relies on.
      const warm = await orionBuild(tree, { ...orion, env: { ...orion.env, ORION_WHOLE_BUILD: "0" } });
      expect(warm.exitCode, describeBuild(warm)).toBe(0);
      expect(warm.summary.actions).toBe(cold!.summary.actions);
      const out = outcomes(warm.events);
      expect(out.executed, describeBuild(warm)).toEqual(WARM_EXECUTED);
      expect(warm.summary.cacheHits).toBe(warm.summary.actions - WARM_EXECUTED.length);
      expect(warm.summary.hostStepsCached).toBe(warm.summary.hostSteps);
      expect(warm.summary.replayed).toBeUndefined();
      // Compiled with `cc -c net.c` (no -o) in deps/: these missed on every warm build before they ran in the shared context.
      for (const label of ["CC deps/hiredis/net.o", "CC deps/linenoise/linenoise.o", "CC deps/hdr_histogram/hdr_histogram.o", "AR deps/hiredis/libhiredis.a"]) {
        expect(out.cached).toContain(label);
      }
      expect(await pingRedis(tree)).toBe("PONG");

      // Again in a fresh extract: the same tree at the same path, the whole build restored at once, make not run.
      await extractRedis(tree);
      const whole = await orionBuild(tree, orion);
      expect(whole.exitCode, describeBuild(whole)).toBe(0);
      expect(whole.summary.replayed, describeBuild(whole)).toBe(true);
      expect(whole.summary).toMatchObject({ actions: cold!.summary.actions, executed: 0, cacheHits: cold!.summary.actions });
      expect(await pingRedis(tree)).toBe("PONG");
    },
    BUILD_MS,
  );
});
