// End-to-end: Ctrl-C (SIGINT) on a running `orion build` — during compiles and during a host step. The Contract
// says exit 130; beyond that, an interrupted build must leave no partial object in the tree or the cache, no
// process of its own behind, and a tree the next build completes exactly as plain make would.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BuildEvent,
  buildOutputs,
  cleanEnv,
  copyFixture,
  differingFiles,
  listFiles,
  makeReference,
  ORION_BIN,
  orionBuild,
  type OrionEnv,
  REPO,
  runProgram,
  Scratch,
} from "./helpers.js";

const scratch = new Scratch("interrupt");
afterAll(() => scratch.cleanup());

const PROGRAM = "slow";
/** Builds here take seconds each on an idle machine; a shared 2-core one can make that several times longer. */
const TIMEOUT = 180_000;

interface Interrupted {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  events: BuildEvent[];
  /** From SIGINT to the process's exit. */
  msToExit: number;
}

/**
 * Runs `orion build tree --json -- ARGS`, sends SIGINT `delayMs` after the first event `when` accepts (so the
 * tool it announces is running by then) — or, with a function of no argument, once it returns true (polled) —
 * and waits for the process to end.
 */
async function interruptBuild(
  tree: string,
  o: OrionEnv,
  when: ((e: BuildEvent) => boolean) | (() => boolean),
  args: string[] = [],
  delayMs = 700,
  /** Send a second SIGINT this long after the first (a user pressing Ctrl-C twice). */
  againAfterMs?: number,
): Promise<Interrupted> {
  const child = execa(process.execPath, [ORION_BIN, "build", tree, "--json", ...(args.length ? ["--", ...args] : [])], {
    cwd: REPO,
    env: cleanEnv({ ORION_CACHE_DIR: o.cacheDir, XDG_CONFIG_HOME: o.configHome, XDG_CACHE_HOME: join(o.configHome, "..", "xdg-cache"), ORION_DRIVER: o.driver }),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    timeout: TIMEOUT - 30_000,
  });
  const events: BuildEvent[] = [];
  let sentAt: number | undefined;
  let pending = "";
  const sendSoon = () => {
    sentAt = -1;
    setTimeout(() => {
      sentAt = Date.now();
      child.kill("SIGINT");
      if (againAfterMs !== undefined) setTimeout(() => child.kill("SIGINT"), againAfterMs);
    }, delayMs);
  };
  const poll =
    when.length === 0
      ? setInterval(() => {
          if (sentAt === undefined && (when as () => boolean)()) sendSoon();
        }, 50)
      : undefined;
  child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      const e = JSON.parse(line) as BuildEvent;
      events.push(e);
      if (sentAt === undefined && !poll && (when as (e: BuildEvent) => boolean)(e)) sendSoon();
    }
  });
  const r = await child;
  clearInterval(poll);
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: r.stdout as string,
    stderr: r.stderr as string,
    events,
    msToExit: sentAt !== undefined && sentAt > 0 ? Date.now() - sentAt : -1,
  };
}

/** Processes (other than zombies) whose command line or working directory lies under `dir`: what a build left running. */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue;
    try {
      const state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0];
      if (state === "Z") continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // another user's process, or it just ended
      }
      if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(dir + "/")) found.push(`${pid} (cwd ${cwd}): ${cmdline}`);
    } catch {
      // it ended while we looked
    }
  }
  return found;
}

/** Each object in the tree is absent or exactly the reference build's: none is truncated or half-written, no temp file is left. */
function partialObjects(tree: string, ref: Map<string, Buffer>): string[] {
  const bad: string[] = listFiles(tree, (r) => r.includes(".orion-tmp-")).map((r) => `${r} (an output's temp file)`);
  for (const rel of listFiles(tree, (r) => r.endsWith(".o"))) {
    const want = ref.get(rel);
    const have = readFileSync(join(tree, rel));
    if (!want || !have.equals(want)) bad.push(`${rel} (${have.length} bytes${want ? `, want ${want.length}` : ", not an output of make"})`);
  }
  return bad;
}

function describeRun(r: Interrupted): string {
  return `exit ${r.exitCode} signal ${r.signal} after ${r.msToExit} ms\n--- stderr:\n${r.stderr}\n--- last events:\n${r.events.slice(-5).map((e) => JSON.stringify(e)).join("\n")}`;
}

describe("SIGINT on orion build", () => {
  let ref: { outputs: Map<string, Buffer>; stdout: Map<string, string> };

  beforeAll(async () => {
    ref = await makeReference("slow-c", join(scratch.root, "reference"), [PROGRAM]);
  }, TIMEOUT);

  it(
    "during compiles: exit 130, no compiler left running, no partial object; the next build completes, byte-identical to make's",
    async () => {
      const tree = copyFixture("slow-c", join(scratch.root, "reference"));
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-compiles"), configHome: scratch.configHome };
      const r = await interruptBuild(tree, orion, (e) => e.type === "action" && e.state === "started");
      expect(r.msToExit, describeRun(r)).toBeGreaterThan(0);
      expect(r.exitCode, describeRun(r)).toBe(130);
      expect(r.stderr).toContain("interrupted");
      // The summary still ends the event stream, with its invariant.
      const summary = r.events.at(-1)!;
      expect(summary.type).toBe("summary");
      expect(summary.actions).toBe(summary.executed + summary.cacheHits + summary.failed + summary.skipped);
      expect(summary.executed, "the interrupt came too late to mean anything").toBeLessThan(summary.actions);
      expect(processesUnder(scratch.root), "processes the interrupted build left running").toEqual([]);
      expect(partialObjects(tree, ref.outputs)).toEqual([]);

      // Whatever the interrupted build stored is sound: the next build in the same cache makes make's exact outputs…
      const next = await orionBuild(tree, orion);
      expect(next.exitCode, next.stderr).toBe(0);
      expect(differingFiles(tree, ref.outputs)).toEqual([]);
      expect(await runProgram(join(tree, PROGRAM))).toBe(ref.stdout.get(PROGRAM));
      // …and so does a fresh copy served from that cache.
      copyFixture("slow-c", tree);
      const warm = await orionBuild(tree, orion);
      expect(warm.exitCode, warm.stderr).toBe(0);
      expect(warm.summary.executed).toBe(0);
      expect(buildOutputs(tree, [PROGRAM])).toEqual([...ref.outputs.keys()]);
      expect(differingFiles(tree, ref.outputs)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    "twice during a host step: exit 130 at once, and the step's processes (which ignore SIGTERM) go with it",
    async () => {
      const tree = copyFixture("slow-c", join(scratch.root, "reference"));
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-twice"), configHome: scratch.configHome };
      const isGen = (e: BuildEvent) => e.type === "host-step" && e.state === "started" && String(e.cmd).includes("gen.sh");
      const r = await interruptBuild(tree, orion, isGen, ["GEN_SLEEP=60"], 700, 200);
      expect(r.exitCode, describeRun(r)).toBe(130);
      expect(r.msToExit, describeRun(r)).toBeLessThan(1_500);
      expect(processesUnder(scratch.root), "processes the interrupted build left running").toEqual([]);
      expect(partialObjects(tree, ref.outputs)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    "during graph extraction: exit 130 (not a death by signal), and nothing built",
    async () => {
      const tree = copyFixture("slow-c", join(scratch.root, "reference"));
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-extract"), configHome: scratch.configHome, driver: "graph" };
      // make reads the Makefile for 5 s; SIGINT once orion's make is running, i.e. orion is extracting the graph.
      const makeRunning = () => processesUnder(tree).some((p) => /^(\S*\/)?make\s/.test(p.slice(p.indexOf("): ") + 3)));
      const r = await interruptBuild(tree, orion, makeRunning, ["PARSE_SLEEP=5"], 200);
      expect(r.msToExit, describeRun(r)).toBeGreaterThan(0);
      expect(r.signal, describeRun(r)).toBeUndefined();
      expect(r.exitCode, describeRun(r)).toBe(130);
      expect(r.events).toEqual([]);
      expect(listFiles(tree, (f) => f.endsWith(".o") || f === PROGRAM)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    "during a host step: exit 130 at once, the step's processes gone, its half-written output not left looking up to date",
    async () => {
      const tree = copyFixture("slow-c", join(scratch.root, "reference"));
      const orion: OrionEnv = { cacheDir: join(scratch.root, "cache-host"), configHome: scratch.configHome };
      // The generator sleeps 60 s before it writes gen.h: only killing it ends the build sooner.
      const r = await interruptBuild(tree, orion, (e) => e.type === "host-step" && e.state === "started" && String(e.cmd).includes("gen.sh"), ["GEN_SLEEP=60"]);
      expect(r.msToExit, describeRun(r)).toBeGreaterThan(0);
      expect(r.exitCode, describeRun(r)).toBe(130);
      expect(r.msToExit, describeRun(r)).toBeLessThan(20_000);
      expect(processesUnder(scratch.root), "processes the interrupted build left running").toEqual([]);
      expect(partialObjects(tree, ref.outputs)).toEqual([]);
      // make deletes the target of a recipe it interrupts; an empty gen.h newer than gen.sh would be taken as built.
      // gen.sh ignores SIGTERM: the step ends by the SIGKILL that follows it.
      expect(r.msToExit, describeRun(r)).toBeGreaterThan(1_000);
      const genH = listFiles(tree).includes("gen.h") ? readFileSync(join(tree, "gen.h"), "utf8") : undefined;
      expect(genH === undefined || genH.includes("GREETING"), `gen.h left as ${JSON.stringify(genH)}`).toBe(true);

      const next = await orionBuild(tree, orion);
      expect(next.exitCode, next.stderr).toBe(0);
      expect(await runProgram(join(tree, PROGRAM))).toBe(ref.stdout.get(PROGRAM));
      expect(differingFiles(tree, ref.outputs)).toEqual([]);
      expect((await execa("make", ["-q", "-C", tree], { env: cleanEnv(), extendEnv: false, reject: false })).exitCode, "make -q after the rebuild").toBe(0);
    },
    TIMEOUT,
  );
});
