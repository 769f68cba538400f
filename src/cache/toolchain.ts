// Toolchain detection: one digest naming a compiler driver, the programs it runs, its version, target and system headers (DESIGN.md, Contract "Action keys").
import { makeDirSync, writeFileAtomic } from "../core/fs.js";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { KeyHasher, digestOfFile } from "../core/digest.js";
import { OrionError, errorMessage } from "../core/errors.js";
import { findProgram } from "../core/programs.js";

/**
 * Version of what enters the toolchain digest. Change it when you change the
 * inputs (another program, another listing depth, another encoding).
 */
export const TOOLCHAIN_KEY_VERSION = 1;

export interface Toolchain {
  /** The driver's basename as called (`cc`, `gcc`, `clang++`): part of the digest, since clang picks its language by it. */
  name: string;
  /** Resolved absolute real path of the driver. */
  path: string;
  /** Hex SHA-256 over everything below. */
  digest: string;
  version: string;
  machine: string;
  /** `#include <...>` search list, C++ then C (deduplicated). */
  systemIncludeDirs: string[];
  /** The driver's LIBRARY_PATH (from `-v`), for resolving `-l` in link keys. */
  librarySearchDirs: string[];
  /** The programs hashed into the digest: `[name, absolute path]`, missing ones left out. */
  programs: [string, string][];
}

export interface DetectToolchainOptions {
  /** Environment the compiler runs with (PATH, GCC_EXEC_PREFIX, COMPILER_PATH matter); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * JSON files remembering detections across processes, so a no-op build runs no subprocess: an entry is taken from
   * the first that holds one, and a new detection is written to the first that can be written (toolchainMemoFiles).
   */
  memoFile?: string | readonly string[];
}

/**
 * Where detections are remembered for a build whose cache is `cacheDir`: first the user's own file, which every cache
 * of the user shares — a toolchain is a property of the machine, not of a cache, and a first build in a new cache then
 * neither runs the driver nor hashes its ~100 MB of programs again (ccache keys its compiler by mtime and size; sccache
 * keeps the digest in its server) — then the cache's own, for a user whose home cannot be written.
 */
export function toolchainMemoFiles(cacheDir: string, env: NodeJS.ProcessEnv): string[] {
  const user = join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "orion", "toolchains.json");
  const own = join(cacheDir, "toolchains.json");
  return user === own ? [own] : [user, own];
}

/** Programs the driver runs; cc1 and cc1plus both, whatever the language, so one digest serves C and C++. */
const PROGRAMS = ["cc1", "cc1plus", "as", "collect2", "ld"] as const;

/**
 * System include dirs are listed one level deep (names of files and
 * subdirectories). Measured here: a recursive listing of gcc 12's seven dirs
 * (~10,400 names) takes 110–240 ms, a top-level one under 1 ms; the brief's
 * bar for recursion was 50 ms. A header added inside an existing subdirectory
 * (e.g. /usr/include/sys/new.h) therefore does not change the digest.
 */
const LISTING = "top-level";

/** [path, size, mtimeMs] of each file and dir a detection depended on; all must be unchanged for a memo to hold. */
type Stamp = [string, number, number];

interface MemoEntry {
  toolchain: Toolchain;
  stamps: Stamp[];
}

const memo = new Map<string, MemoEntry>();

function stampOf(path: string): Stamp | undefined {
  try {
    const st = statSync(path);
    return [path, st.size, st.mtimeMs];
  } catch {
    return undefined;
  }
}

function stampsHold(stamps: readonly Stamp[]): boolean {
  return stamps.every(([p, size, mtime]) => {
    const now = stampOf(p);
    return !!now && now[1] === size && now[2] === mtime;
  });
}

/** Streams the file: the programs are tens of megabytes, and a synchronous read would stall every other start-up task. */
async function hashFile(path: string): Promise<string> {
  return (await digestOfFile(path)).hash;
}

/** The `#include <...>` list and LIBRARY_PATH from `-E -v` stderr. */
export function parseVerboseOutput(stderr: string): { includeDirs: string[]; libraryDirs: string[] } {
  const lines = stderr.split("\n");
  const includeDirs: string[] = [];
  const start = lines.findIndex((l) => l.startsWith("#include <...> search starts here:"));
  if (start >= 0) {
    for (const l of lines.slice(start + 1)) {
      if (l.startsWith("End of search list.")) break;
      // clang appends " (framework directory)" on macOS.
      const dir = l.trim().replace(/ \(framework directory\)$/, "");
      if (dir) includeDirs.push(resolve(dir));
    }
  }
  const lib = lines.find((l) => l.startsWith("LIBRARY_PATH="));
  const libraryDirs = lib ? lib.slice("LIBRARY_PATH=".length).split(":").filter(Boolean).map((d) => resolve(d)) : [];
  return { includeDirs, libraryDirs: [...new Set(libraryDirs)] };
}

/**
 * The environment detection runs under: the caller's PATH and driver-locating
 * variables, but no CPATH-style variables (they would leak into the include
 * list; they enter action keys on their own) and the C locale (the "search
 * starts here" markers are translated otherwise).
 */
function detectionEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = { LC_ALL: "C", LANG: "C" };
  for (const k of ["PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "HOME", "TMPDIR"]) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

async function run(driver: string, args: string[], env: Record<string, string>, input?: string): Promise<{ stdout: string; stderr: string; ok: boolean }> {
  // node:child_process rather than execa: detection sits on the cold build's critical start-up path,
  // and loading execa alone costs ~190 ms of main-thread time there.
  return new Promise((resolvePromise) => {
    const child = execFile(driver, args, { env, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolvePromise({ stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, ""), ok: !error });
    });
    // The driver may exit without reading its input (EPIPE): that is its answer, not ours to fail on.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? "");
  });
}

async function detect(name: string, driver: string, realPath: string, env: Record<string, string>): Promise<MemoEntry> {
  const version = await run(driver, ["-dumpfullversion"], env).then((r) =>
    r.ok && r.stdout ? r : run(driver, ["-dumpversion"], env),
  );
  if (!version.ok || !version.stdout.trim()) throw new OrionError(`compiler ${name} (${driver}) does not answer -dumpversion: ${version.stderr.split("\n")[0] ?? ""}`);
  const [machine, progs, cxx, c] = await Promise.all([
    run(driver, ["-dumpmachine"], env),
    Promise.all(PROGRAMS.map((p) => run(driver, [`-print-prog-name=${p}`], env))),
    run(driver, ["-xc++", "-E", "-v", "-"], env, ""),
    run(driver, ["-xc", "-E", "-v", "-"], env, ""),
  ]);
  const programs: [string, string][] = [];
  PROGRAMS.forEach((p, i) => {
    const printed = progs[i]!.ok ? progs[i]!.stdout.trim() : "";
    const abs = printed ? findProgram(printed, process.cwd(), env) : undefined;
    if (abs) programs.push([p, realpathSync(abs)]);
  });
  // A driver without cc1plus fails -xc++; its C list is then the whole story.
  const parsedCxx = cxx.ok ? parseVerboseOutput(cxx.stderr) : { includeDirs: [], libraryDirs: [] };
  const parsedC = parseVerboseOutput(c.stderr);
  const systemIncludeDirs = [...new Set([...parsedCxx.includeDirs, ...parsedC.includeDirs])];
  const librarySearchDirs = parsedC.libraryDirs.length ? parsedC.libraryDirs : parsedCxx.libraryDirs;

  const [driverHash, ...programHashes] = await Promise.all([realPath, ...programs.map(([, abs]) => abs)].map(hashFile));
  const h = new KeyHasher()
    .add("toolchain-key-version", TOOLCHAIN_KEY_VERSION)
    .add("name", name)
    .add("driver", driverHash!)
    .add("version", version.stdout.trim())
    .add("machine", machine.stdout.trim());
  h.add("programs", programs.length);
  programs.forEach(([p], i) => h.add("program", p).add("bytes", programHashes[i]!));
  h.addList("include-dirs-c++", parsedCxx.includeDirs).addList("include-dirs-c", parsedC.includeDirs);
  h.addList("library-dirs", librarySearchDirs);
  h.add("listing", LISTING);
  for (const dir of systemIncludeDirs) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).sort();
    } catch {
      names = [];
    }
    h.add("dir", dir).addList("names", names);
  }
  const toolchain: Toolchain = {
    name,
    path: realPath,
    digest: h.hex(),
    version: version.stdout.trim(),
    machine: machine.stdout.trim(),
    systemIncludeDirs,
    librarySearchDirs,
    programs,
  };
  // Directory mtimes change when a name is added or removed, which is what the listing hashes.
  const stamps = [realPath, ...programs.map(([, p]) => p), ...systemIncludeDirs]
    .map((p) => stampOf(p))
    .filter((s): s is Stamp => !!s);
  return { toolchain, stamps };
}

function readMemoFile(file: string): Record<string, MemoEntry> {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { version?: number; entries?: Record<string, MemoEntry> };
    return parsed.version === TOOLCHAIN_KEY_VERSION && parsed.entries ? parsed.entries : {};
  } catch {
    return {};
  }
}

function writeMemoFile(file: string, entries: Record<string, MemoEntry>): boolean {
  try {
    makeDirSync(dirname(file));
    writeFileAtomic(file, JSON.stringify({ version: TOOLCHAIN_KEY_VERSION, entries: liveEntries(entries) }));
    return true;
  } catch {
    // A memo that cannot be written only costs the next process a detection.
    return false;
  }
}

/** Entries whose driver is still there: a shared file must not keep every scratch compiler a test once made. */
function liveEntries(entries: Record<string, MemoEntry>): Record<string, MemoEntry> {
  return Object.fromEntries(Object.entries(entries).filter(([, e]) => stampOf(e.toolchain.path)));
}

/**
 * Detects `compiler` (a path, or a name searched on PATH). Memoized in process
 * and, with `memoFile`, across processes, keyed by (real path, size, mtime) of
 * the driver plus the name and PATH-like variables, and checked against the
 * stamps of every program and include dir it hashed. Throws OrionError naming
 * the compiler when it cannot be found or run.
 */
export async function detectToolchain(compiler: string, options: DetectToolchainOptions = {}): Promise<Toolchain> {
  const env = options.env ?? process.env;
  const name = basename(compiler);
  const driver = findProgram(compiler, process.cwd(), env);
  if (!driver) throw new OrionError(`compiler not found: ${compiler}`);
  let realPath: string;
  try {
    realPath = realpathSync(driver);
  } catch (err) {
    throw new OrionError(`compiler not found: ${compiler} (${errorMessage(err)})`, { cause: err });
  }
  const st = stampOf(realPath)!;
  const denv = detectionEnv(env);
  const key = JSON.stringify([realPath, st[1], st[2], name, driver, denv.PATH ?? "", denv.GCC_EXEC_PREFIX ?? "", denv.COMPILER_PATH ?? ""]);

  const cached = memo.get(key);
  if (cached && stampsHold(cached.stamps)) return cached.toolchain;
  const files = typeof options.memoFile === "string" ? [options.memoFile] : (options.memoFile ?? []);
  const read = files.map((file) => ({ file, entries: readMemoFile(file) }));
  for (const { entries } of read) {
    const fromFile = entries[key];
    if (fromFile && stampsHold(fromFile.stamps)) {
      memo.set(key, fromFile);
      return fromFile.toolchain;
    }
  }
  let entry: MemoEntry;
  try {
    entry = await detect(name, isAbsolute(driver) ? driver : resolve(driver), realPath, denv);
  } catch (err) {
    if (err instanceof OrionError) throw err;
    throw new OrionError(`cannot run compiler ${compiler}: ${errorMessage(err)}`, { cause: err });
  }
  memo.set(key, entry);
  read.find(({ file, entries }) => writeMemoFile(file, { ...entries, [key]: entry }));
  return entry.toolchain;
}

/** Forgets the in-process memo (tests, and a long-lived agent told the toolchain changed). */
export function clearToolchainMemo(): void {
  memo.clear();
}
