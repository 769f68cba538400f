// Runs one action on this machine: materializes its input root, runs the tool in a sandbox, and stores its outputs.
import { randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join, posix } from "node:path";
import type { BlobStore } from "../cas/blob-store.js";
import {
  EMPTY_DIGEST,
  ExitCode,
  OrionError,
  Status,
  silentLogger,
  systemClock,
  type Clock,
  type Digest,
  type Logger,
  digestOfFile,
  sameDigest,
} from "../core/index.js";
import type { ActionResult, Command, OutputFile } from "../gen/orion/v1/remote_execution.js";
import { isSharedContextCompile, normalizeRelative, planMovesPath, planSharedCompile, withImplicitObject, type CompilePlan } from "./compile-plan.js";
import { ArgvRefusedError, commandRefusal, mapArgvPaths, type PolicyContext } from "./argv-policy.js";
import { toolFamily } from "../compile/index.js";
import { rewriteDepfile, mungeMakePath } from "./depfile.js";
import { fileKey, forEachLimit, loadInputTree, materializeTree, patchTree, removeTree, sandboxViolation, type InputTree, type MaterializedTree } from "./input-root.js";
import { cancelledError, runInProcessGroup } from "./run-process.js";
import { sandboxUnavailable, type ActionSandbox } from "./sandbox.js";
import { DiskFullError, freeBytesAt } from "../core/disk-full.js";
import type { PeerHint } from "../gen/orion/v1/scheduler.js";

export interface ExecRequest {
  actionId: string;
  /** argv[0] is an absolute tool path or a name on PATH; outputPaths are relative to workingDirectory, which is relative to the input root. */
  command: Command;
  /** A Merkle Directory tree in the BlobStore. */
  inputRoot: Digest;
  /** The client's absolute project root: the path the action "thinks" the input root lives at. */
  projectRoot: string;
  /** "compile" | "archive" | "link" | ... */
  kind: string;
  timeoutMs: number;
  /** Cap per output file; default 1 GiB. */
  maxOutputBytes?: number;
  /** Aborting kills the action's whole process group. */
  signal?: AbortSignal;
  /** Called once the tool's process has exited, before outputs are collected (the node frees its slot then). */
  onProcessExit?: () => void;
  /** Farm: other nodes holding some of the inputs, to ask before the head (the farm executor does; this one ignores them). */
  peers?: readonly PeerHint[];
}

export interface ExecOutcome {
  result: ActionResult;
  /** For compiles: the dependency file's text, with sandbox paths mapped back to projectRoot. */
  depfile?: string;
  phases: { inputFetchMs: number; executeMs: number; uploadMs: number };
}

/**
 * Where an action's input root comes from: its tree, loaded once and handed on to materialization, and the blobs this
 * machine lacks, brought first (a farm node's input chain: its own store, the peers its lease names, the head). It
 * handles its own failures: what it could not bring, materialization reports as missing from the store.
 */
export interface InputSource {
  /** The root's tree alone (a context already on disk is checked against it before reuse). */
  load(root: Digest): Promise<InputTree>;
  /**
   * The root's tree (`tree` when the caller loaded it already), its blobs brought onto this machine as far as the
   * source can; concurrent calls for one root share one.
   */
  bring(root: Digest, peers: readonly PeerHint[], log: Logger, tree?: InputTree): Promise<InputTree>;
}

/** The input source of a machine whose store holds everything it runs (the embedded node): the store alone. */
export function storeInputs(store: BlobStore): InputSource {
  const load = (root: Digest) => loadInputTree(store, root);
  return { load, bring: async (root, _peers, _log, tree) => tree ?? load(root) };
}

export interface LocalExecutorOptions {
  store: BlobStore;
  /** Holds `ctx/` (shared input contexts, kept across runs) and `sb/` (private sandboxes); same file system as the store, so links work. */
  workDir: string;
  workerName: string;
  logger?: Logger;
  clock?: Clock;
  /** PATH given to commands that set none; default this process's PATH. */
  path?: string;
  /** Where input roots come from (default: `store` alone). Materialization reads `store`, so it must see what this brings. */
  inputs?: InputSource;
  /**
   * Runs every tool inside this sandbox (bubblewrap): asked once per action, so the embedded node can
   * probe on first use; resolving undefined runs tools unsandboxed. Absent: never sandboxed.
   */
  sandbox?: () => Promise<ActionSandbox | undefined>;
  /**
   * No other process uses `workDir` (a farm node: one per data dir). A context this process made and no action compiles
   * in any more may then be turned into the next one in place, by their differences, instead of linking every file of
   * the project again: a build that writes a file between compiles (jemalloc's `.sym` files) makes a new context each
   * time. Without it (the embedded node, whose cache folder concurrent builds share) every context is made whole.
   */
  ownsWorkDir?: boolean;
}

/** A context this process made: its tree and file stamps, and how many actions compile in it right now. */
interface OwnedContext {
  root: string;
  tree: InputTree;
  stamps: Stamps;
  users: number;
  /** Higher is newer: the newest idle one is patched into the next. */
  made: number;
}

/** Tree path → [size, mtime ms] of each file of a context, kept beside it. */
type Stamps = Record<string, [number, number]>;

export const DEFAULT_MAX_OUTPUT_BYTES = 1024 ** 3;
/** What a tool prints when its write found the disk full; believed only while the sandboxes' file system is nearly full too. */
const TOOL_SAW_FULL_DISK = /No space left on device|Disk quota exceeded/;
const LOW_SPACE_BYTES = 16 * 1024 ** 2;
/** Cap on captured stdout and stderr, each. */
const MAX_STREAM_BYTES = 64 * 1024 ** 2;
/** Contexts kept on disk however old; older ones go once idle for CONTEXT_IDLE_MS. */
const KEEP_CONTEXTS = 4;
const CONTEXT_IDLE_MS = 10 * 60_000;

function badRequest(message: string): OrionError {
  return new OrionError(message, { exitCode: ExitCode.BUILD_FAILED, code: Status.INVALID_ARGUMENT });
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === "object" && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? "");
}

/** A relative path that stays below its base: no absolute path, no "..", nothing empty. */
function checkRelative(p: string, what: string, allowEmpty: boolean): string {
  if (posix.isAbsolute(p) || p.includes("\0") || p.split("/").includes("..")) {
    throw sandboxViolation(`${what} ${JSON.stringify(p)} must be relative and must not contain ".."`);
  }
  const n = normalizeRelative(p);
  if (!allowEmpty && n === "") throw sandboxViolation(`${what} ${JSON.stringify(p)} names no file`);
  return n;
}

/**
 * An output path, relative to the working directory `wd`, as the path it reports (normalized) and the path it names
 * from the input root. `..` is fine while it stays in the project (`../lib/a.o` from `programs`); an output that
 * leaves the project is the command's own error (exit 1, not retried elsewhere), named in the message.
 */
function checkOutput(p: string, wd: string): { path: string; fromRoot: string } {
  if (posix.isAbsolute(p) || p.includes("\0")) throw sandboxViolation(`output path ${JSON.stringify(p)} must be relative to the working directory`);
  const path = normalizeRelative(p);
  const fromRoot = normalizeRelative(posix.join(wd || ".", p));
  if (fromRoot === ".." || fromRoot.startsWith("../")) {
    throw badRequest(`output path ${JSON.stringify(p)} (working directory ${JSON.stringify(wd || ".")}) leaves the project`);
  }
  if (path === "" || fromRoot === "") throw sandboxViolation(`output path ${JSON.stringify(p)} names no file`);
  return { path, fromRoot };
}

/** The deepest folder (relative to the input root) holding `wd` and the folders of all `outputs`. */
function commonFolder(wd: string, outputs: readonly { fromRoot: string }[]): string {
  let base = wd;
  for (const o of outputs) {
    const dir = normalizeRelative(posix.dirname(o.fromRoot));
    while (base !== "" && dir !== base && !dir.startsWith(base + "/")) base = normalizeRelative(posix.dirname(base));
  }
  return base;
}

function replaceAll(buf: Buffer, replacements: readonly [string, string][]): Buffer {
  let out = buf;
  for (const [from, to] of replacements) {
    if (!from || out.indexOf(from) < 0) continue;
    const parts: Buffer[] = [];
    const fromBuf = Buffer.from(from);
    const toBuf = Buffer.from(to);
    let start = 0;
    for (let at = out.indexOf(fromBuf); at >= 0; at = out.indexOf(fromBuf, start)) {
      parts.push(out.subarray(start, at), toBuf);
      start = at + fromBuf.length;
    }
    parts.push(out.subarray(start));
    out = Buffer.concat(parts);
  }
  return out;
}

export class LocalExecutor {
  private readonly store: BlobStore;
  private readonly workerName: string;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly path: string;
  /** Real paths of workDir/ctx and workDir/sb: gcc records physical directories, so the prefix maps must name them. */
  private readonly dirs: Promise<{ ctx: string; sb: string; stamps: string }>;
  /** Input-root hash → its materialized context; concurrent requests for one root share one materialization. */
  private readonly byRoot = new Map<string, Promise<string>>();
  /** (context, working directory) pairs already checked to exist. */
  private readonly knownDirs = new Set<string>();
  /** Contexts this process has handed out (never pruned under it). */
  private readonly inUse = new Set<string>();
  /** The newest context this process made, reused file by file for the next one. */
  private lastContext?: MaterializedTree;
  /** Private sandboxes that exist right now, removed on close. */
  private readonly sandboxes = new Set<string>();
  /** Contexts found on disk at start (an earlier process made them) and not pruned since, by root hash. */
  private readonly onDisk = new Set<string>();
  private readonly inputs: InputSource;
  private readonly sandbox?: () => Promise<ActionSandbox | undefined>;
  private readonly ownsWorkDir: boolean;
  /** With ownsWorkDir: the contexts this process made, by folder. */
  private readonly owned = new Map<string, OwnedContext>();
  private contextsMade = 0;

  constructor(options: LocalExecutorOptions) {
    this.store = options.store;
    this.workerName = options.workerName;
    this.logger = (options.logger ?? silentLogger).child({ module: "exec" });
    this.clock = options.clock ?? systemClock;
    this.path = options.path ?? process.env.PATH ?? "/usr/bin:/bin";
    this.inputs = options.inputs ?? storeInputs(options.store);
    this.sandbox = options.sandbox;
    this.ownsWorkDir = options.ownsWorkDir ?? false;
    this.dirs = (async () => {
      const ctx = join(options.workDir, "ctx");
      const sb = join(options.workDir, "sb");
      const stamps = join(options.workDir, "ctx-stamps");
      await fsp.mkdir(ctx, { recursive: true });
      await fsp.mkdir(sb, { recursive: true });
      await fsp.mkdir(stamps, { recursive: true });
      for (const name of await fsp.readdir(ctx)) if (/^[0-9a-f]{64}$/.test(name)) this.onDisk.add(name);
      return { ctx: await fsp.realpath(ctx), sb: await fsp.realpath(sb), stamps };
    })();
    // Reported by the first execute; this keeps an early failure from being an unhandled rejection.
    this.dirs.catch(() => undefined);
  }

  /**
   * Runs one action. A command the argv policy refuses is the user's error, as a compiler's own error is: it comes back
   * as a failed result (exit code 1, the refusal on stderr) that is never retried nor cached, and nothing ran.
   */
  async execute(req: ExecRequest): Promise<ExecOutcome> {
    try {
      return await this.run(req);
    } catch (err) {
      if (!(err instanceof ArgvRefusedError)) throw err;
      req.onProcessExit?.();
      const stderrRaw = Buffer.from(`orion: ${err.message}\n`);
      const now = this.clock.now();
      const times = { workerStart: now, inputFetchStart: now, inputFetchEnd: now, executeEnd: now, uploadEnd: now };
      return {
        result: {
          outputFiles: [],
          exitCode: ExitCode.BUILD_FAILED,
          stdoutRaw: Buffer.alloc(0),
          stdoutDigest: EMPTY_DIGEST,
          stderrRaw,
          stderrDigest: await this.store.put(stderrRaw),
          executionMetadata: metadata(this.workerName, times),
        },
        phases: { inputFetchMs: 0, executeMs: 0, uploadMs: 0 },
      };
    }
  }

  private async run(req: ExecRequest): Promise<ExecOutcome> {
    const log = this.logger.child({ action: req.actionId });
    const c = await this.check(req);
    const { sb } = await this.dirs;
    const sandbox = join(sb, randomUUID());
    this.sandboxes.add(sandbox);
    const workerStart = this.clock.now();
    /** Undone when the action ends: the context it compiles in may then be patched into another. */
    const releases: (() => void)[] = [];
    try {
      // Input fetch: the shared context for a plain compile, a private copy of the tree for anything else.
      const inputFetchStart = this.clock.now();
      const jail = await this.sandbox?.();
      const compileArgv = req.kind === "compile" ? (withImplicitObject(c.argv) ?? c.argv) : c.argv;
      const staged =
        req.kind === "compile" && isSharedContextCompile(compileArgv)
          ? await this.stageShared(req, c, compileArgv, sandbox, log, releases)
          : await this.stagePrivate(req, c, sandbox, !!jail, log);
      const inputFetchEnd = this.clock.now();

      const run = await this.runTool(req, c.what, staged, sandbox, jail, log);
      const executeEnd = this.clock.now();
      log.debug("tool exited");
      // The tool is done with the CPU: the caller may start the next one while we collect outputs.
      req.onProcessExit?.();

      const { outputFiles, stdoutRaw, stdoutDigest, stderrRaw, stderrDigest, depfile } = await this.collect(c, staged, run);
      const uploadEnd = this.clock.now();
      log.debug({ exitCode: run.exitCode, shared: !!staged.plan }, "action finished");
      const times = { workerStart, inputFetchStart, inputFetchEnd, executeEnd, uploadEnd };
      return {
        result: { outputFiles, exitCode: run.exitCode, stdoutRaw, stdoutDigest, stderrRaw, stderrDigest, executionMetadata: metadata(this.workerName, times) },
        depfile,
        phases: { inputFetchMs: inputFetchEnd - inputFetchStart, executeMs: executeEnd - inputFetchEnd, uploadMs: uploadEnd - executeEnd },
      };
    } finally {
      for (const release of releases) release();
      await removeTree(sandbox).catch((err: unknown) => log.warn({ err, sandbox }, "cannot remove sandbox"));
      this.sandboxes.delete(sandbox);
    }
  }

  /** Checks a request before anything touches the disk: its paths, its timeout, and the argv policy where no response file hides part of it. */
  private async check(req: ExecRequest): Promise<Checked> {
    const what = `action ${req.actionId}`;
    const argv = req.command.arguments;
    if (argv.length === 0 || !argv[0]) throw badRequest(`${what} has an empty command line`);
    if (!posix.isAbsolute(req.projectRoot)) throw badRequest(`${what}: project root ${req.projectRoot} is not absolute`);
    const projectRoot = req.projectRoot.length > 1 ? req.projectRoot.replace(/\/+$/, "") : req.projectRoot;
    const wd = checkRelative(req.command.workingDirectory, "working directory", true);
    const outputs = req.command.outputPaths.map((p) => checkOutput(p, wd));
    if (!(req.timeoutMs > 0)) throw badRequest(`${what}: timeout must be positive`);
    const maxOutputBytes = req.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (req.signal?.aborted) throw cancelledError(what);

    // The argv policy (argv-policy.ts): a compiler, archiver or linker run for someone else may not run other programs
    // nor reach outside the project and the toolchain. Checked before anything touches the disk; a command with
    // response files is checked once they are read from its input root, before it runs.
    const family = toolFamily(argv[0]);
    const policy: PolicyContext = { projectRoot, cwd: wd ? posix.join(projectRoot, wd) : projectRoot };
    const hasResponseFiles = argv.some((a, i) => i > 0 && a.startsWith("@"));
    if (family && !hasResponseFiles) await this.checkPolicy(argv, req.command, policy, what, async () => undefined);
    return { what, argv, projectRoot, wd, outputs, maxOutputBytes, family, policy, hasResponseFiles };
  }

  /** A plain compile runs in the shared context of its input root; only its outputs go to its private folder. */
  private async stageShared(req: ExecRequest, c: Checked, argv: string[], sandbox: string, log: Logger, releases: (() => void)[]): Promise<Staged> {
    const { what, projectRoot, wd, family, policy } = c;
    const ctxRoot = await this.useContext(req.inputRoot, log, req.peers ?? [], releases);
    let compileArgv = argv;
    if (family && c.hasResponseFiles) compileArgv = await this.checkPolicy(compileArgv, req.command, policy, what, inTree(projectRoot, ctxRoot));
    // Paths in the project the plan does not move itself (-include/abs, -Wp,-MD,/abs…) are moved into the context first,
    // so that no absolute path in the project ever names a file of this machine outside the context.
    const toCtx = (p: string) => (p === projectRoot || p.startsWith(projectRoot + "/") ? ctxRoot + p.slice(projectRoot.length) : p);
    compileArgv = family ? mapArgvPaths(compileArgv, toCtx, { family, only: (slot) => !planMovesPath(compileArgv, slot) }) : compileArgv;
    // The private folder stands for the cwd, or for the folder above it that holds outputs in its siblings too.
    const privateBase = commonFolder(wd, c.outputs);
    const plan = planSharedCompile({ argv: compileArgv, projectRoot, workingDirectory: wd, ctxRoot, privateDir: sandbox, privateBase });
    const cwd = join(ctxRoot, wd);
    await Promise.all(plan.privateParents.map((d) => fsp.mkdir(d, { recursive: true })));
    // A context never changes: a working directory found in it once stays there.
    const key = `${ctxRoot}\0${wd}`;
    if (!this.knownDirs.has(key)) {
      await this.checkWorkingDirectory(cwd, wd, what);
      this.knownDirs.add(key);
    }
    /** Read-only inside the action's namespace besides the system: the shared context; writable: the private folder. */
    return { runArgv: plan.argv, cwd, outputBase: sandbox, outputRoot: privateBase, plan, replacements: plan.replacements, readOnly: [ctxRoot], writable: [sandbox] };
  }

  /** Anything but a plain compile runs in a private copy of its input root, its paths in the project moved there. */
  private async stagePrivate(req: ExecRequest, c: Checked, sandbox: string, jailed: boolean, log: Logger): Promise<Staged> {
    const { what, argv, projectRoot, wd, outputs, family, policy } = c;
    const tree = await this.inputs.bring(req.inputRoot, req.peers ?? [], log);
    await materializeTree(this.store, tree, sandbox, { readOnly: false });
    const cwd = join(sandbox, wd);
    for (const out of outputs) {
      // An input at an output path is a hard link into the store: a tool writing it in place would corrupt the blob.
      await fsp.rm(join(sandbox, out.fromRoot), { force: true });
    }
    await this.checkWorkingDirectory(cwd, wd, what);
    for (const out of outputs) await fsp.mkdir(posix.dirname(join(sandbox, out.fromRoot)), { recursive: true });
    const expanded = family && c.hasResponseFiles ? await this.checkPolicy(argv, req.command, policy, what, inTree(projectRoot, sandbox)) : argv;
    const toSandbox = (a: string) => (a === projectRoot || a.startsWith(projectRoot + "/") ? sandbox + a.slice(projectRoot.length) : a);
    // Paths inside options (-L/abs, -Wl,-T,/abs) move too; a whole argument the policy knows nothing of moves as before.
    const moved = family ? mapArgvPaths(expanded, toSandbox, { family }) : expanded;
    const runArgv = moved.map((a, i) => (a === expanded[i] ? toSandbox(a) : a));
    const staged: Staged = { runArgv, cwd, outputBase: sandbox, outputRoot: "", replacements: [[sandbox, projectRoot]], readOnly: [], writable: [sandbox] };
    if (!jailed) return staged;
    // The tree's files are the store's inodes (hard links), which the tool's user owns as far as the kernel can
    // tell: the tree is bound read-only, and only the folders its outputs go to are writable, their inputs
    // made private copies first, so nothing the tool does reaches the store.
    const outDirs = outputDirs(outputs);
    await forEachLimit(tree.files, 16, async (f) => {
      if (!outDirs.some((d) => d === "" || f.path.startsWith(d + "/"))) return;
      const path = join(sandbox, f.path);
      await fsp.copyFile(path, `${path}.orion-copy`);
      await fsp.rename(`${path}.orion-copy`, path);
    });
    if (!outDirs.includes("")) staged.readOnly.push(sandbox);
    staged.writable = outDirs.map((d) => join(sandbox, d));
    return staged;
  }

  /** Runs the tool (in the jail when there is one); a jail that failed to start, or a full disk, is this machine's failure. */
  private async runTool(req: ExecRequest, what: string, s: Staged, sandbox: string, jail: ActionSandbox | undefined, log: Logger): Promise<ToolRun> {
    const env = this.environment(req.command);
    const wrapped = jail
      ? await jail.wrap(s.runArgv, { readOnly: [...s.readOnly, ...(await jail.toolBinds(s.runArgv[0]!, env.PATH ?? "", [sandbox, ...s.readOnly]))], writable: s.writable, cwd: s.cwd })
      : undefined;

    log.debug("tool started");
    let run: ToolRun;
    try {
      run = await runInProcessGroup(what, {
        argv: wrapped?.argv ?? s.runArgv,
        cwd: s.cwd,
        env,
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        maxBuffer: MAX_STREAM_BYTES,
      });
    } finally {
      await wrapped?.done();
    }
    if (jail?.isSetupFailure(run.exitCode, run.stderr)) {
      const line = run.stderr.toString().split("\n")[0]!;
      // bwrap's execvp found no such tool: the same answer as an unsandboxed spawn's ENOENT.
      if (/^bwrap: execvp .*: No such file or directory$/.test(line)) {
        throw new OrionError(`${what}: cannot run ${s.runArgv[0]}: no such program`, { code: Status.FAILED_PRECONDITION });
      }
      throw sandboxUnavailable(`${what}: the sandbox failed: ${line}`);
    }
    // A tool that found no room for its output in its private folder failed for this machine's disk, not the
    // project: an infrastructure failure naming the folder (exit 3; on a farm, another node may have room).
    if (run.exitCode !== 0 && TOOL_SAW_FULL_DISK.test(run.stderr.toString() + run.stdout.toString())) {
      const free = freeBytesAt(sandbox);
      if ((free ?? Infinity) < LOW_SPACE_BYTES) throw new DiskFullError("the sandboxes", (await this.dirs).sb, undefined, free);
    }
    return run;
  }

  /** The depfile mapped back, the outputs moved into the store, and the captured streams with sandbox paths mapped back. */
  private async collect(c: Checked, s: Staged, run: ToolRun): Promise<Collected> {
    let depfile: string | undefined;
    if (s.plan) depfile = await this.rewriteDepfile(s.plan, run.exitCode);
    const outputFiles = await this.collectOutputs(c.what, s, c.outputs, run.exitCode, c.maxOutputBytes);
    const stdoutRaw = replaceAll(run.stdout, s.replacements);
    const stderrRaw = replaceAll(run.stderr, s.replacements);
    // Most tools print nothing; the empty blob needs no store round trip (REAPI holds it always present).
    const putStream = (b: Buffer) => (b.length === 0 ? Promise.resolve(EMPTY_DIGEST) : this.store.put(b));
    const [stdoutDigest, stderrDigest] = await Promise.all([putStream(stdoutRaw), putStream(stderrRaw)]);
    return { outputFiles, stdoutRaw, stdoutDigest, stderrRaw, stderrDigest, depfile };
  }

  /**
   * Materializes a shared context ahead of its first compile (failures are logged; the compile tries again).
   * A farm node does this while idle; the embedded node does not (its contexts are cheap local links).
   */
  warmContext(root: Digest, peers: readonly PeerHint[] = []): Promise<void> {
    const log = this.logger.child({ root: root.hash.slice(0, 16) });
    const started = this.clock.now();
    return this.context(root, log, peers).then(
      () => log.debug({ ms: this.clock.now() - started }, "context warmed up before its first compile"),
      (err: unknown) => log.debug({ err: (err as Error).message }, "could not warm a context up"),
    );
  }

  /** Hashes of the input roots held as shared contexts: made or being made by this process, or left on disk by an earlier one. */
  contexts(): string[] {
    if (this.onDisk.size === 0) return [...this.byRoot.keys()];
    return [...new Set([...this.byRoot.keys(), ...this.onDisk])];
  }

  /** Removes the private sandboxes of actions still running; shared contexts stay for the next process. */
  async close(): Promise<void> {
    await Promise.all([...this.sandboxes].map((s) => removeTree(s).catch(() => undefined)));
    this.sandboxes.clear();
  }

  /** The shared context of an input root for an action: with ownsWorkDir, held (not patched into another) until the action releases it. */
  private async useContext(root: Digest, log: Logger, peers: readonly PeerHint[], releases: (() => void)[]): Promise<string> {
    for (;;) {
      const pending = this.context(root, log, peers);
      const dir = await pending;
      // Patched into another context between its making and this continuation (its root forgotten): made again.
      if (this.byRoot.get(root.hash) !== pending) continue;
      const own = this.owned.get(dir);
      if (own) {
        own.users++;
        releases.push(() => void own.users--);
      }
      return dir;
    }
  }

  /** The newest owned context no action compiles in, taken out of every index: it is about to become another. */
  private takeIdleContext(): [string, OwnedContext] | undefined {
    let best: [string, OwnedContext] | undefined;
    for (const entry of this.owned) if (entry[1].users === 0 && (!best || entry[1].made > best[1].made)) best = entry;
    if (!best) return undefined;
    const [dir, own] = best;
    this.owned.delete(dir);
    this.byRoot.delete(own.root);
    this.inUse.delete(dir);
    this.onDisk.delete(own.root);
    for (const key of this.knownDirs) if (key.startsWith(`${dir}\0`)) this.knownDirs.delete(key);
    if (this.lastContext?.dir === dir) this.lastContext = undefined;
    return best;
  }

  /** The shared context of an input root, materialized at most once per digest (per process, and on disk across processes). */
  private context(root: Digest, log: Logger, peers: readonly PeerHint[]): Promise<string> {
    let ctx = this.byRoot.get(root.hash);
    if (!ctx) {
      ctx = this.materializeContext(root, log, peers);
      this.byRoot.set(root.hash, ctx);
      ctx.then((dir) => this.inUse.add(dir), () => undefined);
      // A failed materialization is not remembered: the next request tries again (the blob may have arrived).
      ctx.catch(() => this.byRoot.delete(root.hash));
    }
    return ctx;
  }

  private async materializeContext(root: Digest, log: Logger, peers: readonly PeerHint[]): Promise<string> {
    const { ctx } = await this.dirs;
    const final = join(ctx, root.hash);
    let known: InputTree | undefined;
    if (await exists(final)) {
      // Renamed into place whole, so it is complete — but its files are the store's inodes, so a
      // damaged blob damages it too: trust it only while every file keeps the stamp it was made with.
      const tree = (known = await this.inputs.load(root).catch(() => undefined));
      if (tree && (await this.intact(root, final, tree))) {
        const now = new Date(this.clock.now());
        await fsp.utimes(final, now, now).catch(() => undefined); // in use: pruning goes by age
        this.lastContext = { dir: final, files: new Map(tree.files.map((f) => [f.path, fileKey(f)])) };
        return final;
      }
      log.warn({ root: root.hash }, "a stored context no longer matches its digests; materializing it again");
      await removeTree(final);
    }
    const tmp = join(ctx, `.tmp-${root.hash.slice(0, 16)}-${randomUUID()}`);
    try {
      const started = this.clock.now();
      const tree = await this.inputs.bring(root, peers, log, known);
      const broughtMs = this.clock.now() - started;
      const patched = this.ownsWorkDir ? await this.patchIdleContext(tree, tmp, log) : undefined;
      let stamps: Stamps;
      if (patched) {
        stamps = patched;
      } else {
        await materializeTree(this.store, tree, tmp, { readOnly: true, reuse: this.lastContext });
        stamps = await this.stampFiles(tmp, tree.files.map((f) => f.path));
      }
      await this.saveStamps(root, stamps);
      try {
        await fsp.rename(tmp, final);
      } catch (err) {
        // Another process sharing this folder won the race; its tree is identical.
        if (!isErrno(err, "ENOTEMPTY", "EEXIST")) throw err;
        await removeTree(tmp);
      }
      this.lastContext = { dir: final, files: new Map(tree.files.map((f) => [f.path, fileKey(f)])) };
      if (this.ownsWorkDir) {
        this.owned.set(final, { root: root.hash, tree, stamps, users: 0, made: ++this.contextsMade });
      }
      log.debug({ root: root.hash, files: tree.files.length, patched: !!patched, broughtMs, ms: this.clock.now() - started }, "context materialized");
      await this.pruneContexts(ctx, final).catch((err) => log.warn({ err: (err as Error).message }, "could not prune old contexts"));
      return final;
    } catch (err) {
      await removeTree(tmp).catch(() => undefined);
      if (err instanceof OrionError) throw err;
      throw new OrionError(`cannot materialize input root ${root.hash}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Turns the newest idle owned context into `tree` at `dest` by their differences (patchTree), with its stamps carried
   * over and only the files it linked stamped anew; undefined (and nothing left at `dest`) when there is none or it fails.
   */
  private async patchIdleContext(tree: InputTree, dest: string, log: Logger): Promise<Stamps | undefined> {
    const idle = this.takeIdleContext();
    if (!idle) return undefined;
    const [dir, own] = idle;
    const { stamps: stampDir } = await this.dirs;
    await fsp.rm(join(stampDir, `${own.root}.json`), { force: true });
    try {
      await fsp.rename(dir, dest);
      const linked = await patchTree(this.store, own.tree, tree, dest);
      const stamps: Stamps = {};
      for (const f of tree.files) {
        const kept = own.stamps[f.path];
        if (kept) stamps[f.path] = kept;
      }
      Object.assign(stamps, await this.stampFiles(dest, linked));
      return stamps;
    } catch (err) {
      log.debug({ err: (err as Error).message }, "could not patch an idle context into the next one; materializing it whole");
      await removeTree(dest).catch(() => undefined);
      await removeTree(dir).catch(() => undefined);
      return undefined;
    }
  }

  /** (size, mtime) of these files of a context: kept beside it, a later process checks them before reuse. */
  private async stampFiles(dir: string, paths: readonly string[]): Promise<Stamps> {
    const stamps: Stamps = {};
    await forEachLimit(paths, 64, async (path) => {
      const st = await fsp.lstat(join(dir, path));
      stamps[path] = [st.size, Math.floor(st.mtimeMs)];
    });
    return stamps;
  }

  private async saveStamps(root: Digest, stamps: Stamps): Promise<void> {
    const { stamps: stampDir } = await this.dirs;
    await fsp.writeFile(join(stampDir, `${root.hash}.json`), JSON.stringify(stamps));
  }

  private async intact(root: Digest, dir: string, tree: InputTree): Promise<boolean> {
    const { stamps: stampDir } = await this.dirs;
    let stamps: Stamps;
    try {
      stamps = JSON.parse(await fsp.readFile(join(stampDir, `${root.hash}.json`), "utf8"));
    } catch {
      return false;
    }
    let ok = true;
    await forEachLimit(tree.files, 16, async (f) => {
      if (!ok) return;
      const st = await fsp.lstat(join(dir, f.path)).catch(() => undefined);
      const want = stamps[f.path];
      if (!st || !want || st.size !== f.digest.sizeBytes || want[0] !== st.size || want[1] !== Math.floor(st.mtimeMs)) ok = false;
      // Stamps survive a flipped byte: made by another process, a context is trusted only once its bytes are hashed.
      else if (st.size > 0 && !sameDigest(await digestOfFile(join(dir, f.path)).catch(() => undefined), f.digest)) ok = false;
    });
    return ok;
  }

  /**
   * Keeps the newest KEEP_CONTEXTS contexts; older ones go once unused for a while (another
   * process sharing the folder may still be compiling in one, so age, not just count, decides).
   */
  private async pruneContexts(ctxDir: string, keep: string): Promise<void> {
    const entries = await fsp.readdir(ctxDir);
    const dated = await Promise.all(
      entries
        .filter((e) => !e.startsWith("."))
        .map(async (e) => ({ path: join(ctxDir, e), mtime: (await fsp.stat(join(ctxDir, e)).catch(() => undefined))?.mtimeMs ?? 0 })),
    );
    dated.sort((a, b) => b.mtime - a.mtime);
    const cutoff = this.clock.now() - CONTEXT_IDLE_MS;
    for (const old of dated.slice(KEEP_CONTEXTS)) {
      if (old.path === keep || this.inUse.has(old.path) || old.mtime > cutoff) continue;
      await removeTree(old.path);
      const name = old.path.slice(old.path.lastIndexOf("/") + 1);
      this.onDisk.delete(name);
      const { stamps } = await this.dirs;
      await fsp.rm(join(stamps, `${name}.json`), { force: true });
    }
  }

  /** Throws the user's error when the policy refuses the command; returns its argv with response files expanded. */
  private async checkPolicy(
    argv: readonly string[],
    command: Command,
    policy: PolicyContext,
    what: string,
    read: (absPath: string) => Promise<string | undefined>,
  ): Promise<string[]> {
    const checked = await commandRefusal(argv, command.environmentVariables, policy, read);
    if ("refusal" in checked) {
      const err = new ArgvRefusedError(checked.refusal, what);
      this.logger.warn({ action: what, option: checked.refusal.option, err: err.message }, "command refused by the argv policy");
      throw err;
    }
    return checked.argv;
  }

  private async checkWorkingDirectory(cwd: string, wd: string, what: string): Promise<void> {
    const st = await fsp.stat(cwd).catch(() => undefined);
    // Without this, spawn's ENOENT for a missing cwd would read as "no such program".
    if (!st?.isDirectory()) throw badRequest(`${what}: working directory ${wd || "."} is not a directory of the input root`);
  }

  private environment(command: Command): Record<string, string> {
    const env: Record<string, string> = {};
    for (const v of command.environmentVariables) env[v.name] = v.value;
    env.PATH ??= this.path;
    return env;
  }

  /** Maps the depfile back to the project; a user-requested one is rewritten in place, so it is collected as the project would see it. */
  private async rewriteDepfile(plan: CompilePlan, exitCode: number): Promise<string | undefined> {
    let text: string;
    try {
      text = await fsp.readFile(plan.depfilePath, "utf8");
    } catch (err) {
      // A failed compile may stop before gcc writes it.
      if (isErrno(err, "ENOENT") && exitCode !== 0) return undefined;
      throw new OrionError(`cannot read the depfile ${plan.depfilePath}: ${(err as Error).message}`, { cause: err });
    }
    const quoted = plan.replacements.map(([from, to]) => [from, mungeMakePath(to)] as const);
    const mapped = rewriteDepfile(text, (name) => quoted.reduce((s, [from, to]) => s.replaceAll(from, to), name));
    if (plan.depfileRequested) await fsp.writeFile(plan.depfilePath, mapped);
    return mapped;
  }

  private async collectOutputs(
    what: string,
    s: Staged,
    outputs: Checked["outputs"],
    exitCode: number,
    maxBytes: number,
  ): Promise<OutputFile[]> {
    const files: OutputFile[] = [];
    for (const { path, fromRoot } of outputs) {
      const full = join(s.outputBase, s.outputRoot ? fromRoot.slice(s.outputRoot.length + 1) : fromRoot);
      const st = await fsp.lstat(full).catch((err: unknown) => {
        if (isErrno(err, "ENOENT", "ENOTDIR")) return undefined;
        throw err;
      });
      if (!st) {
        if (exitCode === 0) {
          throw new OrionError(`${what} did not produce ${path}`, { exitCode: ExitCode.BUILD_FAILED, code: Status.FAILED_PRECONDITION });
        }
        continue;
      }
      // A symlink could point anywhere on the node; storing its target would leak files from outside the sandbox.
      if (!st.isFile()) throw sandboxViolation(`${what}: output ${path} is not a regular file`);
      if (st.size > maxBytes) {
        throw new OrionError(`${what}: output ${path} is ${st.size} bytes, above the ${maxBytes}-byte cap`, {
          exitCode: ExitCode.BUILD_FAILED,
          code: Status.RESOURCE_EXHAUSTED,
        });
      }
      // The output is ours alone (a private folder or sandbox): move it into the store rather than copy it.
      const digest = await this.store.adoptFile(full);
      files.push({ path, digest, isExecutable: (st.mode & 0o111) !== 0, contents: Buffer.alloc(0) });
    }
    return files;
  }
}

/** What `check` found of a request before anything touched the disk. */
interface Checked {
  what: string;
  argv: string[];
  /** Without trailing slashes. */
  projectRoot: string;
  /** The working directory, relative to the input root ("" for the root). */
  wd: string;
  /** Each output as the command names it (normalized, relative to the cwd) and from the input root. */
  outputs: { path: string; fromRoot: string }[];
  maxOutputBytes: number;
  family: ReturnType<typeof toolFamily>;
  policy: PolicyContext;
  hasResponseFiles: boolean;
}

/** An action's inputs in place: the argv to run, where, what its namespace may read and write, and how its paths map back. */
interface Staged {
  runArgv: string[];
  cwd: string;
  /** Where its outputs are found: the folder standing for `outputRoot`. */
  outputBase: string;
  /** The folder of the input root (relative, "" for the root) that `outputBase` stands for; every output is below it. */
  outputRoot: string;
  /** A shared-context compile's plan (its depfile is mapped back). */
  plan?: CompilePlan;
  replacements: [string, string][];
  /** Read-only inside the action's namespace besides the system: the shared context it compiles in, or its private tree. */
  readOnly: string[];
  /** Writable inside the namespace: the private folder, or the folders of a private tree its outputs go to. */
  writable: string[];
}

type ToolRun = Awaited<ReturnType<typeof runInProcessGroup>>;

type Collected = Pick<ActionResult, "outputFiles" | "stdoutRaw" | "stdoutDigest" | "stderrRaw" | "stderrDigest"> & { depfile?: string };

/** The clock readings of one action: each phase ends where the next begins. */
interface PhaseTimes {
  workerStart: number;
  inputFetchStart: number;
  inputFetchEnd: number;
  executeEnd: number;
  uploadEnd: number;
}

function metadata(worker: string, t: PhaseTimes): ActionResult["executionMetadata"] {
  return {
    worker,
    queuedTimestamp: undefined,
    workerStartTimestamp: new Date(t.workerStart),
    inputFetchStartTimestamp: new Date(t.inputFetchStart),
    inputFetchCompletedTimestamp: new Date(t.inputFetchEnd),
    executionStartTimestamp: new Date(t.inputFetchEnd),
    executionCompletedTimestamp: new Date(t.executeEnd),
    outputUploadStartTimestamp: new Date(t.executeEnd),
    outputUploadCompletedTimestamp: new Date(t.uploadEnd),
    workerCompletedTimestamp: new Date(t.uploadEnd),
  };
}

/** Reads a response file the command names: a project path from where the input root is materialized, a toolchain path where it is. */
function inTree(projectRoot: string, base: string): (absPath: string) => Promise<string | undefined> {
  return async (abs) => {
    const physical = abs === projectRoot || abs.startsWith(projectRoot + "/") ? base + abs.slice(projectRoot.length) : abs;
    const st = await fsp.stat(physical).catch(() => undefined);
    return st?.isFile() ? fsp.readFile(physical, "utf8") : undefined;
  };
}

/** The folders (relative to the input root, "" for the root) an action's outputs go to, none inside another. */
function outputDirs(outputs: Checked["outputs"]): string[] {
  const dirs = [...new Set(outputs.map((o) => normalizeRelative(posix.dirname(o.fromRoot))))].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const d of dirs) if (!kept.some((k) => k === "" || d === k || d.startsWith(k + "/"))) kept.push(d);
  return kept;
}

async function exists(path: string): Promise<boolean> {
  return fsp.stat(path).then(
    () => true,
    () => false,
  );
}
