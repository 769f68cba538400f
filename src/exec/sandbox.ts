// Wraps each action's command in bubblewrap (an unprivileged user in its own namespaces, read-only toolchain and inputs, one writable folder, no network) under a per-action pids cgroup and rlimits.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { ExitCode, OrionError, Status, errorMessage, silentLogger, type Logger } from "../core/index.js";
import { findProgram } from "../core/programs.js";
import { runInProcessGroup } from "./run-process.js";
import { defaultSpawnServerBinary } from "./spawn-server.js";

/** The user and group an action runs as inside its namespace (nobody/nogroup). */
export const SANDBOX_UID = 65534;

export interface SandboxLimits {
  /** Processes (and threads) alive at once in one action: pids.max of its cgroup, else RLIMIT_NPROC for a non-root node. */
  maxProcesses: number;
  /** RLIMIT_AS of each process of the action. */
  maxMemoryBytes: number;
  /** RLIMIT_FSIZE: no file the action writes (outputs, /tmp) grows past this. */
  maxFileBytes: number;
}

const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  maxProcesses: 256,
  maxMemoryBytes: 8 * 1024 ** 3,
  maxFileBytes: 4 * 1024 ** 3,
};

/** What one action may see besides the system: its inputs read-only, one private folder writable; each at its own path. */
export interface SandboxMounts {
  readOnly: readonly string[];
  writable: readonly string[];
  cwd: string;
}

export interface WrappedCommand {
  argv: string[];
  /**
   * Called once the tool has exited: its cgroup is removed in the background (the namespace's last processes take a
   * moment to go; close() waits for it). Never throws.
   */
  done(): Promise<void>;
}

export interface ActionSandbox {
  /** One line for logs and `orion status`: what isolates an action and which limits are in force. */
  readonly description: string;
  wrap(argv: readonly string[], mounts: SandboxMounts): Promise<WrappedCommand>;
  /**
   * Read-only binds a tool needs beyond /usr (a toolchain installed under /opt), for argv[0] as the action
   * gives it; none overlaps `mounted` (the action's own folders).
   */
  toolBinds(program: string, path: string, mounted: readonly string[]): Promise<string[]>;
  /**
   * True when a run's failure came from setting the sandbox up, not from the tool (bwrap and the launcher
   * print one line with their own prefix and exit 1): that is the machine's fault, retried elsewhere.
   */
  isSetupFailure(exitCode: number, stderr: Buffer): boolean;
  close(): Promise<void>;
}

export interface SandboxOptions {
  limits?: Partial<SandboxLimits>;
  logger?: Logger;
  /** bwrap's path; default the one on PATH. */
  bwrap?: string;
  /** native/build/orion-limit; default the one beside this checkout. */
  launcher?: string;
  /** Where per-action pids cgroups are made; default found from /proc/self/cgroup; null: none (rlimits only). */
  cgroupParent?: string | null;
  /** A folder the probe may bind writable and write one file in (a node's work dir). */
  probeDir: string;
}

/**
 * RLIMIT_NPROC, the fallback without a pids cgroup, counts every process of the node's user (the kernel checks the
 * user's total against the limit its namespace was created under), not the action's: it must leave room for the
 * node's other actions, so it only stops a fork bomb from taking the machine.
 */
const USER_NPROC_FLOOR = 4096;

/** Why an action could not be sandboxed: the machine's problem (exit 3), never the user's. */
export function sandboxUnavailable(message: string, cause?: unknown): OrionError {
  return new OrionError(message, { exitCode: ExitCode.INFRASTRUCTURE, code: Status.UNAVAILABLE, cause });
}

/** The parent folder of per-action pids cgroups this process can create and limit (v1's pids hierarchy, or a delegated v2 one). */
async function findCgroupParent(log: Logger): Promise<string | undefined> {
  let lines: string[];
  try {
    lines = readFileSync("/proc/self/cgroup", "utf8").split("\n");
  } catch {
    return undefined;
  }
  const candidates: string[] = [];
  for (const line of lines) {
    const [, controllers, path] = line.split(":", 3) as [string, string | undefined, string | undefined];
    if (path === undefined || controllers === undefined) continue;
    if (controllers.split(",").includes("pids")) candidates.push(join("/sys/fs/cgroup/pids", path));
    else if (controllers === "" && existsSync("/sys/fs/cgroup/cgroup.controllers")) candidates.push(join("/sys/fs/cgroup", path));
  }
  for (const parent of candidates) {
    const probe = join(parent, `orion-probe-${process.pid}-${randomUUID().slice(0, 8)}`);
    try {
      await fsp.mkdir(probe);
    } catch {
      continue;
    }
    try {
      await fsp.writeFile(join(probe, "pids.max"), "64");
      return parent;
    } catch (err) {
      log.debug({ parent, err: errorMessage(err) }, "this cgroup has no writable pids controller");
    } finally {
      await fsp.rmdir(probe).catch(() => undefined);
    }
  }
  return undefined;
}

/** Removes cgroups left by Orion processes that died (their pid is gone); others' stay. */
async function sweepStaleCgroups(parent: string): Promise<void> {
  for (const name of await fsp.readdir(parent).catch(() => [] as string[])) {
    const m = /^orion-(?:probe-)?(\d+)-/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its owner still runs
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    await fsp.rmdir(join(parent, name)).catch(() => undefined);
  }
}

function formatBytes(n: number): string {
  return n % 1024 ** 3 === 0 ? `${n / 1024 ** 3} GiB` : `${Math.round(n / 1024 ** 2)} MiB`;
}

/** The launcher beside this checkout: native/build/orion-limit. */
function defaultLauncher(): string | undefined {
  const spawn = defaultSpawnServerBinary();
  return spawn ? join(dirname(spawn), "orion-limit") : undefined;
}

class BwrapSandbox implements ActionSandbox {
  readonly description: string;
  private nextCgroup = 0;
  private readonly live = new Set<string>();
  /** Cgroups being removed after their action ended. */
  private readonly removing = new Map<string, Promise<void>>();
  /** argv[0] and PATH → the program's path and its real path (undefined: not found). */
  private readonly programs = new Map<string, Promise<{ found: string; real: string } | undefined>>();

  constructor(
    private readonly bwrap: string,
    private readonly launcher: string,
    private readonly base: readonly string[],
    private readonly limits: SandboxLimits,
    private readonly cgroupParent: string | undefined,
    private readonly log: Logger,
  ) {
    const root = process.getuid?.() === 0;
    const procLimit = cgroupParent
      ? `pids cgroup max ${limits.maxProcesses} (${cgroupParent})`
      : root
        ? "no process limit (root ignores RLIMIT_NPROC and no pids cgroup is writable)"
        : `RLIMIT_NPROC ${Math.max(limits.maxProcesses, USER_NPROC_FLOOR)} (all of this user's processes; no pids cgroup is writable)`;
    this.description = `bwrap uid ${SANDBOX_UID}, no network, ${procLimit}, RLIMIT_AS ${formatBytes(limits.maxMemoryBytes)}, RLIMIT_FSIZE ${formatBytes(limits.maxFileBytes)}`;
  }

  async wrap(argv: readonly string[], mounts: SandboxMounts): Promise<WrappedCommand> {
    const pre: string[] = [this.launcher];
    let cgroup: string | undefined;
    if (this.cgroupParent) {
      const dir = join(this.cgroupParent, `orion-${process.pid}-${this.nextCgroup++}`);
      try {
        await fsp.mkdir(dir);
        await fsp.writeFile(join(dir, "pids.max"), String(this.limits.maxProcesses));
      } catch (err) {
        await fsp.rmdir(dir).catch(() => undefined);
        throw sandboxUnavailable(`cannot make the action's pids cgroup ${dir}: ${errorMessage(err)}`, err);
      }
      cgroup = dir;
      this.live.add(dir);
      pre.push("-c", dir);
    } else if (process.getuid?.() !== 0) {
      pre.push("-p", String(Math.max(this.limits.maxProcesses, USER_NPROC_FLOOR)));
    }
    pre.push("-m", String(this.limits.maxMemoryBytes), "-f", String(this.limits.maxFileBytes), "--", this.bwrap, ...this.base);
    for (const p of mounts.readOnly) pre.push("--ro-bind", p, p);
    for (const p of mounts.writable) pre.push("--bind", p, p);
    pre.push("--chdir", mounts.cwd, "--", ...argv);
    const done = () => {
      // Off the action's path: the bwrap that exited has torn its pid namespace down, so nothing is left to limit.
      if (cgroup) this.removing.set(cgroup, this.removeCgroup(cgroup).finally(() => this.removing.delete(cgroup)));
      return Promise.resolve();
    };
    return { argv: pre, done };
  }

  async toolBinds(program: string, path: string, mounted: readonly string[]): Promise<string[]> {
    const inside = (p: string, dir: string) => p === dir || p.startsWith(dir + "/");
    // A relative path, or one in the action's own folders, names a file of its input: bound already.
    if ((program.includes("/") && !isAbsolute(program)) || mounted.some((m) => inside(program, m))) return [];
    const key = `${program}\0${path}`;
    let r = this.programs.get(key);
    if (!r) {
      r = (async () => {
        const found = findProgram(program, "/", { PATH: path });
        const real = found && (await fsp.realpath(found).catch(() => undefined));
        return found && real ? { found, real } : undefined;
      })();
      this.programs.set(key, r);
    }
    const p = await r;
    if (!p) return [];
    const binds: string[] = [];
    if (!p.real.startsWith("/usr/")) {
      // A toolchain's prefix (/opt/gcc-13 for /opt/gcc-13/bin/gcc) holds its cc1, as and headers too; when that
      // would cover the action's own folders (a wrapper script beside the node's data), only its folder, or itself.
      const bin = dirname(p.real);
      const choice = [dirname(bin), bin, p.real].find((c) => c !== "/" && !mounted.some((m) => inside(m, c) || inside(c, m)));
      if (choice) binds.push(choice);
    }
    // Called through a symlink outside /usr (~/bin/gcc -> /opt/...): the link's path must exist inside too.
    if (p.found !== p.real && !p.found.startsWith("/usr/") && !binds.some((b) => inside(p.found, b))) binds.push(p.found);
    return binds;
  }

  isSetupFailure(exitCode: number, stderr: Buffer): boolean {
    if (exitCode !== 1) return false;
    const head = stderr.subarray(0, 16).toString("latin1");
    return head.startsWith("bwrap: ") || head.startsWith("orion-sandbox: ");
  }

  async close(): Promise<void> {
    await Promise.all(this.removing.values());
    await Promise.all([...this.live].map((d) => this.removeCgroup(d)));
  }

  /** rmdir fails while the namespace's last processes are still dying: wait a little, then kill what is left. */
  private async removeCgroup(dir: string): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await fsp.rmdir(dir);
        this.live.delete(dir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
          this.live.delete(dir);
          return;
        }
        if (code !== "EBUSY") break;
      }
      if (attempt >= 10) {
        const procs = await fsp.readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
        for (const pid of procs.split("\n").filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // already gone
          }
        }
      }
      await new Promise((r) => setTimeout(r, attempt < 10 ? 1 : 20));
    }
    this.log.warn({ cgroup: dir }, "cannot remove an action's cgroup; processes may be left in it");
  }
}

/** bwrap's fixed arguments: namespaces, the system read-only at its own paths, fresh /proc, /dev and /tmp. */
async function baseArguments(): Promise<string[]> {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_UID), "--ro-bind", "/usr", "/usr"];
  // Merged /usr makes these symlinks; older layouts have real folders.
  for (const name of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const path = `/${name}`;
    const st = await fsp.lstat(path).catch(() => undefined);
    if (!st) continue;
    if (st.isSymbolicLink()) args.push("--symlink", await fsp.readlink(path), path);
    else if (st.isDirectory()) args.push("--ro-bind", path, path);
  }
  // The loader's cache, and /etc/alternatives for cc and c++ (Debian's cc -> /etc/alternatives/cc -> gcc); nothing else of /etc.
  args.push("--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--ro-bind-try", "/etc/alternatives", "/etc/alternatives");
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--setenv", "TMPDIR", "/tmp");
  return args;
}

/**
 * Finds bwrap and the launcher and runs one tiny sandboxed command (it must see itself as SANDBOX_UID
 * and write to its one writable folder); rejects with sandboxUnavailable saying why when it cannot.
 */
export async function createSandbox(options: SandboxOptions): Promise<ActionSandbox> {
  const log = (options.logger ?? silentLogger).child({ module: "sandbox" });
  const limits = { ...DEFAULT_SANDBOX_LIMITS, ...options.limits };
  const bwrap = options.bwrap ?? findProgram("bwrap", "/", process.env);
  if (!bwrap) throw sandboxUnavailable("bwrap (bubblewrap) is not installed");
  const launcher = options.launcher ?? defaultLauncher();
  if (!launcher || !existsSync(launcher)) throw sandboxUnavailable(`the sandbox launcher ${launcher ?? "orion-limit"} is not built (make build)`);
  const cgroupParent = options.cgroupParent === null ? undefined : (options.cgroupParent ?? (await findCgroupParent(log)));
  if (cgroupParent) await sweepStaleCgroups(cgroupParent);
  const sandbox = new BwrapSandbox(bwrap, launcher, await baseArguments(), limits, cgroupParent, log);

  await fsp.mkdir(options.probeDir, { recursive: true });
  const dir = await fsp.mkdtemp(join(options.probeDir, "probe-"));
  try {
    const wrapped = await sandbox.wrap(["/bin/sh", "-c", 'id -u && : > "$0/ok"', dir], { readOnly: [], writable: [dir], cwd: dir });
    let run;
    try {
      run = await runInProcessGroup("the sandbox probe", { argv: wrapped.argv, cwd: dir, env: { PATH: "/usr/bin:/bin" }, timeoutMs: 30_000, maxBuffer: 1 << 16 });
    } finally {
      await wrapped.done();
    }
    const out = run.stdout.toString().trim();
    if (run.exitCode !== 0 || out !== String(SANDBOX_UID) || !existsSync(join(dir, "ok"))) {
      const why = run.stderr.toString().trim().split("\n")[0] || `exit code ${run.exitCode}, uid ${JSON.stringify(out)}`;
      throw sandboxUnavailable(`cannot sandbox actions with bwrap: ${why}`);
    }
  } catch (err) {
    await sandbox.close();
    if (err instanceof OrionError && err.exitCode === ExitCode.INFRASTRUCTURE) throw err;
    throw sandboxUnavailable(`cannot sandbox actions with bwrap: ${errorMessage(err)}`, err);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  log.debug({ sandbox: sandbox.description }, "actions run sandboxed");
  return sandbox;
}
