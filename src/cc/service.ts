// CcService: answers one compiler call through the cache — a hit restores the object (and depfile) and replays the diagnostics, a miss runs the compiler, learns its headers and stores the result — and runs every other call as the compiler would.
import { randomBytes } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { existsSync, mkdirSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, resolve } from "node:path";
import { type Digest, digestOf, errorMessage, type Logger } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import {
  type ActionCache,
  type Toolchain,
  compileLevel1Key,
  compileLevel2Key,
  detectToolchain,
  keyEnv,
  keyWorkingDir,
  lookupCompile,
  normalizeArgv,
  parseDepfile,
  shadowProbes,
} from "../cache/index.js";
import type { StatCache } from "../merkle/index.js";
import { openCacheDir } from "../client/embedded.js";
import { ActionResult, CompileManifest, type OutputFile } from "../gen/orion/v1/remote_execution.js";
import { type Classification, classifyCall } from "./classify.js";
import { defaultSelfPaths, findCompiler, notFoundReply, runCaptured } from "./compiler.js";
import { CcStats, type CcCounter, openWithRetry } from "./stats.js";
import type { CallHandler, CompilerCall, CompilerReply } from "./types.js";

export interface CcServiceOptions {
  /** The cache folder: CAS, action cache, stat cache, toolchain memo and the cc counters live here. */
  cacheDir: string;
  logger: Logger;
  /** CAS size bound (default: the store's own, 10 GiB). */
  maxCacheBytes?: number;
  /** Neither read nor write the cache: every call runs as the compiler would (ORION_NO_CACHE). */
  noCache?: boolean;
  /**
   * How a call that is not cached runs (links, -E, stdin sources, probes, depgen). Default: captured with
   * stdin closed, which is all a CallHandler reached over a socket can do; the in-process `orion cc`
   * passes one that inherits the terminal's stdio.
   */
  passThrough?: (exe: string, call: CompilerCall) => Promise<CompilerReply>;
  /** Real paths of Orion's own executables, never run as the compiler (default: defaultSelfPaths()). */
  selfPaths?: string[];
}

/** Headers under these prefixes belong to the toolchain (its digest covers them), as in src/head/prepare.ts. */
const SYSTEM_PREFIXES = ["/usr/", "/lib/", "/lib64/"];

/**
 * A file changed this close to (or after) the start of a call may have changed while the compiler read
 * it; its result is then not stored (ccache's "file too new"). The margin covers the kernel's coarse
 * file-timestamp clock lagging the wall clock by a tick.
 */
const TOO_NEW_MARGIN_MS = 10n;

interface Stores {
  store: BlobStore;
  cache: ActionCache;
  statCache: StatCache;
}

/** Everything a cacheable compile's look-up and store need, computed once per call. */
interface CompileKey {
  exe: string;
  call: CompilerCall;
  cls: Classification;
  toolchain: Toolchain;
  level1: string;
  /** The search dirs as key paths (the source's dir, -iquote, -I, -isystem, -idirafter), for shadow probes. */
  searchDirs: string[];
  sourceAbs: string;
  sourceStat: BigIntStats;
  /** Call start minus the margin, in ns since the epoch: inputs modified at or after this are too new to record. */
  tooNewNs: bigint;
}

/** A path as it enters a manifest: normalized, relative paths kept relative to the call's cwd (as the compiler resolved them), absolute ones absolute. */
function keyPath(p: string): string {
  const n = posix.normalize(p);
  return n === "" ? "." : n;
}

function sortByPath<T extends { path: string }>(a: T, b: T): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

export class CcService implements CallHandler {
  private readonly o: CcServiceOptions;
  private readonly log: Logger;
  private readonly selfPaths: string[];
  /** Opened on the first cacheable call: links and probes never pay for the stores. */
  private stores?: Stores;
  private statsDb?: CcStats | null;

  constructor(options: CcServiceOptions) {
    this.o = options;
    this.log = options.logger.child({ module: "cc" });
    this.selfPaths = options.selfPaths ?? defaultSelfPaths();
  }

  async handle(call: CompilerCall): Promise<CompilerReply> {
    const startMs = BigInt(Date.now());
    const name = call.argv[0];
    if (name === undefined) return notFoundReply("(no compiler named)");
    const exe = findCompiler(name, call.cwd, call.env, { selfPaths: this.selfPaths, skipDirs: masqueradeDirs(call.env) });
    if (!exe) return notFoundReply(name);
    const cls = classifyCall(call.argv, call.cwd, call.env);
    if (!cls.cacheable || this.o.noCache) {
      this.log.debug({ argv: call.argv, reason: this.o.noCache ? "no-cache" : cls.reason }, "not cacheable; running the compiler");
      this.bump("uncacheable");
      return this.passThrough(exe, call);
    }

    let key: CompileKey | undefined;
    try {
      key = await this.compileKey(exe, call, cls, startMs);
      if (key) {
        const hit = await this.lookup(key);
        if (hit) {
          this.bump("hits");
          return hit;
        }
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err), argv: call.argv }, "cache look-up failed; running the compiler directly");
      this.bump("fallbacks");
      return runCaptured(exe, call);
    } finally {
      this.flushStatCache();
    }
    if (!key) {
      // The source or a forced include is not a readable file: the compiler's own answer is the one to give.
      this.bump("uncacheable");
      return this.passThrough(exe, call);
    }
    return this.miss(key);
  }

  close(): void {
    for (const f of [() => this.stores?.statCache.close(), () => this.stores?.cache.close(), () => this.stores?.store.close(), () => this.statsDb?.close()]) {
      try {
        f();
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, "closing a store failed");
      }
    }
    this.stores = undefined;
    this.statsDb = undefined;
  }

  /** Counts one call; counting must never fail a compile. */
  bump(counter: CcCounter): void {
    try {
      if (this.statsDb === undefined) this.statsDb = new CcStats(this.o.cacheDir);
      this.statsDb?.bump(counter);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "cannot record cc stats");
      this.statsDb = null;
    }
  }

  private passThrough(exe: string, call: CompilerCall): Promise<CompilerReply> {
    return (this.o.passThrough ?? runCaptured)(exe, call);
  }

  private open(): Stores {
    if (!this.stores) {
      const open = openCacheDir(this.o.cacheDir);
      const store = openWithRetry(() => open.store(this.o.maxCacheBytes ?? 10 * 1024 ** 3));
      let cache: ActionCache | undefined;
      try {
        cache = openWithRetry(() => open.cache());
        const statCache = openWithRetry(() => open.statCache());
        this.stores = { store, cache, statCache };
      } catch (err) {
        cache?.close();
        store.close();
        throw err;
      }
    }
    return this.stores;
  }

  private flushStatCache(): void {
    try {
      this.stores?.statCache.flush();
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, "stat cache flush failed");
    }
  }

  /** Level 1 and what level 2 needs; undefined when the source or a forced include cannot be read (the compiler will say why). */
  private async compileKey(exe: string, call: CompilerCall, cls: Classification, startMs: bigint): Promise<CompileKey | undefined> {
    const { args } = cls;
    const source = args.sources[0]!;
    const sourceAbs = resolve(call.cwd, source);
    const sourceStat = await stat(sourceAbs, { bigint: true }).catch(() => undefined);
    if (!sourceStat?.isFile()) return undefined;
    const forced: string[] = [];
    for (const f of args.forcedIncludes) {
      // gcc looks for -include FILE in the cwd first; one found only along the search path is left to the compiler.
      const abs = resolve(call.cwd, f);
      if (!existsSync(abs)) return undefined;
      forced.push(abs);
    }
    const { statCache } = this.open();
    const toolchain = await detectToolchain(exe, { env: call.env, memoFile: join(this.o.cacheDir, "toolchains.json") });
    const sourceDigest = await statCache.digestOf(sourceAbs, sourceStat);
    const forcedIncludeDigests: Digest[] = [];
    for (const abs of forced) forcedIncludeDigests.push(await statCache.digestOf(abs));
    const level1 = compileLevel1Key({
      toolchain: toolchain.digest,
      argv: normalizeArgv(call.argv, toolchain),
      // Tree paths are relative to the call's cwd, so the working dir enters as "." — or absolute when the object embeds it.
      workingDir: keyWorkingDir(args, ".", call.cwd),
      env: keyEnv(call.env),
      sourceDigest,
      forcedIncludeDigests,
    });
    const searchDirs = [posix.dirname(source), ...args.iquoteDirs, ...args.includeDirs, ...args.isystemDirs, ...args.idirafterDirs].map(keyPath);
    return { exe, call, cls, toolchain, level1, searchDirs, sourceAbs, sourceStat, tooNewNs: (startMs - TOO_NEW_MARGIN_MS) * 1_000_000n };
  }

  private probes(k: CompileKey, headers: string[]): string[] {
    return shadowProbes(headers, k.searchDirs, (p) => existsSync(resolve(k.call.cwd, p)));
  }

  /** A hit restores the outputs and replays stdout/stderr; undefined on a miss (or when a stored blob vanished meanwhile). */
  private async lookup(k: CompileKey): Promise<CompilerReply | undefined> {
    const { store, cache, statCache } = this.open();
    const cwd = k.call.cwd;
    const result = await lookupCompile(
      cache,
      store,
      k.level1,
      (h) => statCache.digestOf(resolve(cwd, h)).catch(() => undefined),
      (headers) => this.probes(k, headers),
    );
    if (!result) return undefined;
    const [stdout, stderr] = await Promise.all([blob(store, result.stdoutRaw, result.stdoutDigest), blob(store, result.stderrRaw, result.stderrDigest)]);
    if (!stdout || !stderr) return undefined;
    for (const of of result.outputFiles) {
      const dest = resolve(cwd, of.path);
      // A missing output dir is the compiler's error to report, with its own words.
      if (!existsSync(dirname(dest))) return undefined;
      if (!(await store.copyOut(of.digest!, dest, of.isExecutable))) return undefined;
    }
    return { exitCode: 0, stdout, stderr };
  }

  private async miss(k: CompileKey): Promise<CompilerReply> {
    const { args } = k.cls;
    const cwd = k.call.cwd;
    let tmpDepfile: string | undefined;
    const extra: string[] = [];
    if (!args.depfile) {
      // The user asked for no depfile: ask for one in a temp file to learn the headers, and remove it afterwards.
      const tmpDir = join(this.o.cacheDir, "tmp");
      try {
        mkdirSync(tmpDir, { recursive: true });
        tmpDepfile = join(tmpDir, `dep-${process.pid}-${randomBytes(6).toString("hex")}.d`);
        extra.push("-MD", "-MF", tmpDepfile);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, "cannot make a temp depfile; compiling without caching");
        this.bump("fallbacks");
        return runCaptured(k.exe, k.call);
      }
    }
    this.bump("misses");
    this.bump("localCompiles");
    const reply = await runCaptured(k.exe, k.call, extra);
    try {
      // A compiler's error is the user's answer: never cached.
      if (reply.exitCode === 0) await this.record(k, reply, tmpDepfile ?? resolve(cwd, args.depfile!.path));
    } catch (err) {
      this.log.warn({ err: errorMessage(err), argv: k.call.argv }, "storing a compile result failed; the compile itself succeeded");
      this.bump("fallbacks");
    } finally {
      this.flushStatCache();
      if (tmpDepfile) await rm(tmpDepfile, { force: true }).catch(() => undefined);
    }
    return reply;
  }

  /** Stores a successful compile: its outputs and diagnostics under level 2, the headers its depfile named as a manifest under level 1. */
  private async record(k: CompileKey, reply: CompilerReply, depfileAbs: string): Promise<void> {
    const { store, cache, statCache } = this.open();
    const { args } = k.cls;
    const cwd = k.call.cwd;
    const tooNew = (st: BigIntStats): boolean => st.mtimeNs >= k.tooNewNs || st.ctimeNs >= k.tooNewNs;

    const source = await stat(k.sourceAbs, { bigint: true });
    if (source.mtimeNs !== k.sourceStat.mtimeNs || source.size !== k.sourceStat.size || source.ino !== k.sourceStat.ino || tooNew(source)) {
      this.log.debug({ source: k.sourceAbs }, "source changed around the compile; not stored");
      return;
    }
    const sourceKey = keyPath(args.sources[0]!);
    const headers: { path: string; digest: Digest }[] = [];
    const seen = new Set<string>();
    for (const dep of parseDepfile(await readFile(depfileAbs, "utf8")).deps) {
      const path = keyPath(dep);
      if (path === sourceKey || seen.has(path)) continue;
      seen.add(path);
      if (isAbsolute(path) && this.isSystemHeader(path, k.toolchain)) continue;
      const abs = resolve(cwd, path);
      const st = await stat(abs, { bigint: true });
      if (tooNew(st)) {
        this.log.debug({ header: abs }, "header changed around the compile; not stored");
        return;
      }
      headers.push({ path, digest: await statCache.digestOf(abs, st) });
    }
    headers.sort(sortByPath);

    const outputFiles: OutputFile[] = [];
    const put = async (path: string): Promise<void> => {
      const digest = await store.putFile(resolve(cwd, path));
      outputFiles.push({ path, digest, isExecutable: false, contents: Buffer.alloc(0) });
    };
    await put(args.output!);
    if (args.depfile) await put(args.depfile.path);
    const result = ActionResult.fromPartial({
      outputFiles,
      exitCode: 0,
      stdoutRaw: reply.stdout,
      stdoutDigest: digestOf(reply.stdout),
      stderrRaw: reply.stderr,
      stderrDigest: digestOf(reply.stderr),
    });
    cache.putResult(compileLevel2Key(k.level1, headers, this.probes(k, headers.map((h) => h.path))), result);
    cache.addManifest(k.level1, CompileManifest.fromPartial({ headers }));
  }

  private isSystemHeader(abs: string, toolchain: Toolchain): boolean {
    return SYSTEM_PREFIXES.some((p) => abs.startsWith(p)) || toolchain.systemIncludeDirs.some((d) => abs.startsWith(d.endsWith("/") ? d : `${d}/`));
  }
}

/** Bytes inlined in the result, or fetched from the store by digest; undefined when neither has them. */
async function blob(store: BlobStore, inline: Uint8Array | undefined, digest: Digest | undefined): Promise<Buffer | undefined> {
  if (!digest || digest.sizeBytes === 0) return Buffer.alloc(0);
  if (inline && inline.length === digest.sizeBytes) return Buffer.from(inline);
  return store.get(digest);
}

/** The masquerade dir the launcher names (ORION_MASQUERADE_DIR): never searched for the real compiler. */
function masqueradeDirs(env: Record<string, string | undefined>): string[] {
  const d = env.ORION_MASQUERADE_DIR;
  return d ? [d] : [];
}
