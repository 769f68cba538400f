// Shared helpers for the end-to-end tests: temp copies of the fixtures, running the real `orion`
// CLI (bin/orion → dist/) and plain `make` as child processes, and parsing/checking the NDJSON
// build events against the Contract in DESIGN.md.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { expect } from "vitest";
import type { SummaryEvent } from "../src/scheduler/events.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ORION_BIN = join(REPO, "bin", "orion");
export const FIXTURES = join(REPO, "fixtures");

/** Variables that would make a child `make`/`orion` behave differently from a clean shell. */
const SCRUBBED = ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS", "CC", "CXX", "AR", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "SOURCE_DATE_EPOCH"];

/**
 * process.env without ORION_* and without make/compiler variables a parent (e.g. `make test`) may have set; no build
 * leaves a warm build server behind (ORION_BUILD_SERVER=0: test/build-server.e2e.test.ts covers that path).
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ORION_BUILD_SERVER: "0" };
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("ORION_") || SCRUBBED.includes(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** A scratch area for one test file: `dir(name)` hands out fresh sub-directories; `cleanup()` removes everything. */
export class Scratch {
  readonly root: string;
  /** An empty directory used as XDG_CONFIG_HOME so the user's config cannot interfere. */
  readonly configHome: string;

  constructor(prefix: string) {
    this.root = mkdtempSync(join(tmpdir(), `orion-e2e-${prefix}-`));
    this.configHome = this.dir("xdg-config");
  }

  dir(name: string): string {
    const d = join(this.root, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Copies fixtures/<name> to dest (dest is removed first, so a re-copy yields a pristine tree at the same path). */
export function copyFixture(name: string, dest: string): string {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(join(FIXTURES, name), dest, { recursive: true });
  return dest;
}

export interface ProcResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  command: string;
}

export interface OrionEnv {
  cacheDir: string;
  configHome: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Who drives the build (ORION_DRIVER): tests of the graph scheduler, its sandbox and its farm path pin "graph". */
  driver?: "graph" | "make";
  /** Kill the CLI after this long (default 45 s, below vitest's 60 s test timeout); a Redis build needs more. */
  timeoutMs?: number;
}

/** Runs the real CLI: `node bin/orion ARGS`, with its own cache dir and an empty config home. */
export async function runOrion(args: string[], o: OrionEnv): Promise<ProcResult> {
  const r = await execa(process.execPath, [ORION_BIN, ...args], {
    cwd: o.cwd ?? REPO,
    env: cleanEnv({ ORION_CACHE_DIR: o.cacheDir, XDG_CONFIG_HOME: o.configHome, XDG_CACHE_HOME: join(o.configHome, "..", "xdg-cache"), ORION_DRIVER: o.driver, ...o.env }),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    // Below vitest's 60 s test timeout, so a hung build fails with its output rather than a bare timeout.
    timeout: o.timeoutMs ?? 45_000,
  });
  const killed = r.timedOut ? `\n[killed after ${(o.timeoutMs ?? 45_000) / 1000} s]` : "";
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr + killed, command: `orion ${args.join(" ")}` };
}

export type BuildEvent = { type: string; seq: number; buildId: string; [k: string]: any };

/** The Contract's summary line, as the scheduler types it. */
export type Summary = SummaryEvent;

/**
 * Parses `--json` NDJSON and checks the Contract on it: every line is a JSON object with `type`,
 * a strictly increasing `seq` and the same `buildId`; build-start is first, summary is last and the
 * only one; the summary's invariant actions = executed + cacheHits + failed + skipped holds.
 */
export function parseEvents(stdout: string): { events: BuildEvent[]; summary: Summary } {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  expect(lines.length, "NDJSON output is empty").toBeGreaterThan(0);
  const events = lines.map((l, i) => {
    try {
      return JSON.parse(l) as BuildEvent;
    } catch {
      throw new Error(`line ${i + 1} of --json output is not JSON: ${l}`);
    }
  });
  let lastSeq = -Infinity;
  const buildId = events[0]!.buildId;
  expect(typeof buildId === "string" && buildId.length > 0, `buildId missing on ${lines[0]}`).toBe(true);
  for (const [i, e] of events.entries()) {
    expect(typeof e.type, `line ${i + 1} has no type: ${lines[i]}`).toBe("string");
    expect(typeof e.seq, `line ${i + 1} has no seq: ${lines[i]}`).toBe("number");
    expect(e.seq, `seq not strictly increasing at line ${i + 1}`).toBeGreaterThan(lastSeq);
    lastSeq = e.seq;
    expect(e.buildId, `line ${i + 1} has another buildId`).toBe(buildId);
  }
  expect(events[0]!.type).toBe("build-start");
  expect(events.at(-1)!.type).toBe("summary");
  expect(events.filter((e) => e.type === "summary")).toHaveLength(1);
  const summary = events.at(-1) as unknown as Summary;
  checkSummary(summary);
  const start = events[0]!;
  // A make-driven build knows its actions only as make issues them: build-start's counts are a prediction then.
  if (!start.predicted) expect(summary.actions, "summary.actions differs from build-start.actions").toBe(start.actions);
  return { events, summary };
}

/** The summary invariant, and each counted action appearing in the events with that outcome exactly once. */
export function checkSummary(s: Summary): void {
  for (const k of ["actions", "executed", "cacheHits", "failed", "skipped", "hostSteps", "attempts", "clones"] as const) {
    expect(Number.isInteger(s[k]) && s[k] >= 0, `summary.${k} = ${s[k]}`).toBe(true);
  }
  expect(s.actions, `invariant actions = executed + cacheHits + failed + skipped: ${JSON.stringify(s)}`).toBe(s.executed + s.cacheHits + s.failed + s.skipped);
  expect(typeof s.nodes).toBe("object");
}

/** Action events grouped by final outcome, keyed by label. */
export function outcomes(events: BuildEvent[]): { executed: string[]; cached: string[]; failed: string[]; byLabel: Map<string, BuildEvent> } {
  const last = new Map<string, BuildEvent>();
  for (const e of events) if (e.type === "action" && ["finished", "cached", "failed", "cancelled"].includes(e.state)) last.set(e.id, e);
  const pick = (state: string) => [...last.values()].filter((e) => e.state === state).map((e) => e.label as string).sort();
  return { executed: pick("finished"), cached: pick("cached"), failed: pick("failed"), byLabel: new Map([...last.values()].map((e) => [e.label, e])) };
}

export interface OrionBuild extends ProcResult {
  events: BuildEvent[];
  summary: Summary;
}

/** `orion build DIR --json EXTRA...`, parsed and checked. */
export async function orionBuild(dir: string, o: OrionEnv, extra: string[] = []): Promise<OrionBuild> {
  const r = await runOrion(["build", dir, "--json", ...extra], o);
  let parsed: { events: BuildEvent[]; summary: Summary };
  try {
    parsed = parseEvents(r.stdout);
  } catch (err) {
    // Node exits 13 when the top-level await in bin/orion never settles: the CLI stopped with nothing left to run.
    const hint = r.exitCode === 13 ? " [exit 13 = Node's 'unsettled top-level await': the build promise never settled]" : "";
    throw new Error(`${r.command} (exit ${r.exitCode}${hint}): ${(err as Error).message}\n--- stderr:\n${r.stderr}\n--- stdout (tail):\n${r.stdout.split("\n").slice(-5).join("\n")}`);
  }
  // Each action that executed / hit the cache / failed is reported exactly once with that outcome.
  const out = outcomes(parsed.events);
  expect(out.executed.length, "finished action events vs summary.executed").toBe(parsed.summary.executed);
  expect(out.cached.length, "cached action events vs summary.cacheHits").toBe(parsed.summary.cacheHits);
  return { ...r, ...parsed };
}

/** Plain make in dir (no Orion). */
export async function runMake(dir: string, args: string[] = []): Promise<ProcResult> {
  const r = await execa("make", ["-C", dir, ...args], { env: cleanEnv(), extendEnv: false, reject: false, stdin: "ignore", timeout: 120_000 });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, command: `make -C ${dir} ${args.join(" ")}` };
}

/** Runs a built program and returns its stdout (throws if it fails). */
export async function runProgram(path: string): Promise<string> {
  const r = await execa(path, [], { env: cleanEnv(), extendEnv: false, reject: false, stdin: "ignore", timeout: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${path} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** Runs each of `programs` (paths relative to dir) and maps it to its stdout. */
export async function programOutputs(dir: string, programs: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const p of programs) m.set(p, await runProgram(join(dir, p)));
  return m;
}

/** The build succeeded: exit 0, no action failed or was skipped. */
export function expectBuildOk(b: OrionBuild): void {
  expect(b.exitCode, `${b.command} exited ${b.exitCode}\n${b.stderr}`).toBe(0);
  expect(b.summary.failed).toBe(0);
  expect(b.summary.skipped).toBe(0);
}

/** Every regular file under dir (relative paths, sorted), optionally filtered. */
export function listFiles(dir: string, keep: (rel: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() && keep(relative(dir, p))) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Reads the files `rels` under dir into memory: a snapshot to compare against later. */
export function snapshot(dir: string, rels: string[]): Map<string, Buffer> {
  return new Map(rels.map((r) => [r, readFileSync(join(dir, r))]));
}

/** Files of `expected` that are missing or differ under dir. */
export function differingFiles(dir: string, expected: Map<string, Buffer>): string[] {
  const bad: string[] = [];
  for (const [rel, want] of expected) {
    let have: Buffer | undefined;
    try {
      have = readFileSync(join(dir, rel));
    } catch {
      bad.push(`${rel} (missing)`);
      continue;
    }
    if (!have.equals(want)) bad.push(rel);
  }
  return bad;
}

/** Build outputs of a tree: objects, archives, and the given program paths. */
export function buildOutputs(dir: string, programs: string[] = []): string[] {
  return listFiles(dir, (r) => r.endsWith(".o") || r.endsWith(".a") || programs.includes(r));
}

/**
 * Reference: builds fixtures/<name> with plain `make -j2` at `dir`, runs its programs, snapshots
 * its outputs, then removes `dir` so Orion can build a fresh copy at the same absolute path.
 */
export async function makeReference(name: string, dir: string, programs: string[]): Promise<{ outputs: Map<string, Buffer>; stdout: Map<string, string> }> {
  copyFixture(name, dir);
  const r = await runMake(dir, ["-j2"]);
  if (r.exitCode !== 0) throw new Error(`${r.command} failed (${r.exitCode}): ${r.stderr}`);
  const stdout = new Map<string, string>();
  for (const p of programs) stdout.set(p, await runProgram(join(dir, p)));
  const outputs = snapshot(dir, buildOutputs(dir, programs));
  rmSync(dir, { recursive: true, force: true });
  return { outputs, stdout };
}

/** Non-empty lines of a string. */
export function lines(s: string): string[] {
  return s.split("\n").filter((l) => l.trim() !== "");
}
