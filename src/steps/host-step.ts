// Runs one host step (a recipe line run in the real tree, outside the graph) as make would run it, and stops it as
// make does on Ctrl-C: the step leads its own process group, so cancelling it ends everything it started (a shell's
// children included), and the files it had created by then are removed — make deletes the target of a recipe it
// interrupts, so that a half-written generated file is never taken as up to date by the next build. Only files at
// paths that did not exist when the step started go: a file saved over meanwhile (an editor's atomic save, sed -i)
// is a new inode too, and may be the user's source.
import { lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

export interface HostStepOptions {
  /** Absolute working directory. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborting stops the step: SIGTERM to its process group, SIGKILL after `graceMs`. */
  signal: AbortSignal;
  /** The project root: where an interrupted step's new files are looked for. */
  root: string;
  /** The files under root before the step (root-relative), when the caller has them: saves walking the tree. */
  existed?: { has(rel: string): boolean };
  /** Remove the files an interrupted step created (default true). */
  removeOnCancel?: boolean;
  graceMs?: number;
}

export interface HostStepResult {
  exitCode?: number;
  signal?: string;
  /** stdout and stderr, interleaved as they came. */
  output: Uint8Array;
  /** stdout alone (a caller that hands the two streams back apart: a line make runs). */
  stdout: Uint8Array;
  /** stderr alone. */
  stderr: Uint8Array;
  /** Stopped by the signal (its exit code and output mean nothing then). */
  cancelled: boolean;
  /** Files (relative to the root) the interrupted step had created, now removed. */
  removed: string[];
}

/** Clock slack: a file's times come from the kernel's coarse clock, which may lag Date.now() by a tick. */
const CLOCK_SLACK_MS = 50;

/** Process groups of the steps running now: killed if this process exits under them (a second Ctrl-C exits at once). */
const running = new Set<number>();
let exitHook = false;

/** Signals a process group (a step's, make's); one already gone is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone.
  }
}

export async function runHostStep(argv: readonly string[], o: HostStepOptions): Promise<HostStepResult> {
  const { execa } = await import("execa"); // host steps are rare: load it when one runs
  // What existed before: only new paths are the step's to remove if it is interrupted.
  const removeOnCancel = o.removeOnCancel ?? true;
  const existed = removeOnCancel ? (o.existed ?? (await treePaths(o.root))) : new Set<string>();
  const startedAt = Date.now();
  const child = execa(argv[0]!, argv.slice(1), {
    cwd: o.cwd,
    reject: false,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    all: true,
    encoding: "buffer",
    stripFinalNewline: false,
    env: o.env,
    // Its own process group: a step's shell, make and compilers all go when it is stopped, none is orphaned.
    detached: true,
  });
  if (child.pid !== undefined) running.add(child.pid);
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => running.forEach((pid) => killGroup(pid, "SIGKILL")));
  }
  let cancelled = false;
  let hardKill: NodeJS.Timeout | undefined;
  const stop = () => {
    cancelled = true;
    // SIGTERM first: a recursive make removes its own half-built target, as it does on Ctrl-C.
    killGroup(child.pid, "SIGTERM");
    hardKill = setTimeout(() => killGroup(child.pid, "SIGKILL"), o.graceMs ?? 2_000);
  };
  if (o.signal.aborted) stop();
  else o.signal.addEventListener("abort", stop, { once: true });
  let r;
  try {
    r = await child;
  } finally {
    o.signal.removeEventListener("abort", stop);
    clearTimeout(hardKill);
    if (child.pid !== undefined) running.delete(child.pid);
  }
  let removed: string[] = [];
  if (cancelled) {
    // Whatever of the group survived SIGTERM (a child that ignores it) goes now.
    killGroup(child.pid, "SIGKILL");
    if (removeOnCancel) removed = await removeCreatedSince(o.root, startedAt - CLOCK_SLACK_MS, existed);
  }
  const bytes = (b: unknown) => (b instanceof Uint8Array ? b : new Uint8Array());
  return { exitCode: r.exitCode, signal: r.signal, output: bytes(r.all), stdout: bytes(r.stdout), stderr: bytes(r.stderr), cancelled, removed };
}

/** Calls `f` with the path (relative to root) of every regular file under root, .git aside. */
async function walkFiles(root: string, f: (rel: string, abs: string) => Promise<void> | void): Promise<void> {
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name !== ".git") await walk(join(dir, e.name), relPath);
      } else if (e.isFile()) {
        await f(relPath, join(dir, e.name));
      }
    }
  };
  await walk(root, "");
}

async function treePaths(root: string): Promise<Set<string>> {
  const paths = new Set<string>();
  await walkFiles(root, (rel) => void paths.add(rel));
  return paths;
}

/**
 * Removes the regular files under root at paths not in `existed` and born at or after `since` (by birth time, where
 * the file system keeps one): what an interrupted step created. Files at paths that existed before are left as they
 * are, even if rewritten — removing those could remove a source the user saved meanwhile.
 */
async function removeCreatedSince(root: string, since: number, existed: { has(rel: string): boolean }): Promise<string[]> {
  const removed: string[] = [];
  await walkFiles(root, async (rel, abs) => {
    if (existed.has(rel)) return;
    const st = await lstat(abs).catch(() => undefined);
    if (st && st.birthtimeMs > 0 && st.birthtimeMs >= since) {
      await rm(abs, { force: true });
      removed.push(rel);
    }
  });
  return removed.sort();
}
