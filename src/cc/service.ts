// CcService: answers one compiler call through the cache — a hit restores the object (and depfile) and replays the diagnostics, a miss runs the compiler, learns its headers and stores the result — and runs every other call as the compiler would.
import { FileClock, makeDirSync, sameStat } from "../core/fs.js";
import { randomBytes } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { type Digest, digestOf, digestOfFile, errorMessage, ExitCode, type Logger, sameDigest } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import {
  type ActionCache,
  type CompileCacheOptions,
  type CompileKey,
  type ProbeMemo,
  type Toolchain,
  CHANGING,
  compileKey,
  detectToolchain,
  toolchainMemoFiles,
  keyEnv,
  lookupCompiled,
  readCompileInputs,
  recordCompiled,
  depfileInputs,
  depfileRules,
  isAbsentHeader,
} from "../cache/index.js";
import { type DirState, DirListings, placeOutput, type StatCache } from "../merkle/index.js";
import { openCacheDir } from "../store/index.js";
import { ActionResult, type OutputFile } from "../gen/orion/v1/remote_execution.js";
import { type Classification, classifyCall } from "./classify.js";
import { defaultSelfPaths, findCompiler, notFoundReply, runCaptured } from "./compiler.js";
import { CcStats, type CcCounter, openWithRetry } from "./stats.js";
import type { CcFarm, FarmOutcome } from "./farm.js";
import { appendRecord, type CallNote, callRecord } from "./record.js";
import type { CallHandler, CompilerCall, CompilerReply } from "./types.js";
import { changedSince, StatFileView } from "./stat-file-view.js";

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
  /**
   * Calls Orion does not cache are handed back to the caller (reply.runInClient) instead of run here: the agent's
   * native client then execs the compiler itself, with its own stdio, and the agent spends no fork on it. Calls
   * are still run here when ORION_RECORD asks for their exit code and duration.
   */
  uncachedRunInClient?: boolean;
  /** Real paths of Orion's own executables, never run as the compiler (default: defaultSelfPaths()). */
  selfPaths?: string[];
}

/**
 * The moment a compiler is started, on the clock the kernel stamps ctimes with: a file changed at or after it may
 * have changed while the compiler read it, and the result is then not stored (ccache's "file too new"). That clock
 * is coarse (a tick of a few ms, behind the wall clock), so it is read, not guessed (FileClock).
 * A header written in an earlier tick (jemalloc's private_namespace.h, by the line just before the compile) is
 * settled; only one written in the compile's own tick, or later, is too new. When the stamp cannot be made, the wall
 * clock less a margin of more than a tick stands in.
 */
function compileStartNs(clock: FileClock): bigint {
  return clock.nowNs() ?? (BigInt(Date.now()) - 10n) * 1_000_000n;
}

const PROBE_MEMO_MAX = 20_000;

/** Sources of a many-source -M/-MM run at once (each its own compiler process). */
const DEPGEN_PARALLEL = Math.max(2, availableParallelism());

export interface Stores {
  store: BlobStore;
  cache: ActionCache;
  statCache: StatCache;
}

/** Everything a cacheable compile's look-up and store need, computed once per call. */
interface CcCompile {
  exe: string;
  call: CompilerCall;
  cls: Classification;
  toolchain: Toolchain;
  /** Its key in the compile-cache protocol: level 1, sources and search dirs as key paths. */
  key: CompileKey;
  /** orion cc's choices in the protocol: probes everywhere and memoized, the toolchain's own include dirs left out of manifests. */
  options: CompileCacheOptions;
  /** The sources (one for a compile, any number for -M/-MM): absolute paths, stats and digests at key time. */
  sources: { abs: string; stat: BigIntStats; digest: Digest }[];
}

export class CcService implements CallHandler {
  private readonly o: CcServiceOptions;
  private scratchMade = false;
  private clock: FileClock | undefined;
  private readonly log: Logger;
  private readonly selfPaths: string[];
  /** Opened on the first cacheable call: links and probes never pay for the stores. */
  private stores?: Stores;
  private statsDb?: CcStats | null;
  /** Directory listings kept across calls: shadow probes ask hundreds of "does it exist?" per look-up. */
  private readonly dirs = new DirListings();
  /** Shadow-probe answers by (cwd, search dirs, headers), reused while the directories they came from are unchanged. */
  private readonly probeMemos = new Map<string, { dirs: DirState[]; probes: string[] }>();
  /** Farms the calls named (ORION_HEAD, with their token and CA), connected on first use; grpc-js loads only then. */
  private readonly farms = new Map<string, CcFarm>();
  /** Farms whose unavailability this process has already reported (once each: one line, not one per compile). */
  private readonly farmNoticed = new Set<string>();

  constructor(options: CcServiceOptions) {
    this.o = options;
    this.log = options.logger.child({ module: "cc" });
    this.selfPaths = options.selfPaths ?? defaultSelfPaths();
  }

  async handle(call: CompilerCall): Promise<CompilerReply> {
    const recordTo = call.env.ORION_RECORD;
    if (!recordTo) return this.serve(call, { outcome: "uncacheable" });
    const started = Date.now();
    const note: CallNote = { outcome: "uncacheable" };
    const cls = { value: undefined as Classification | undefined };
    const reply = await this.serve(call, note, cls);
    try {
      appendRecord(recordTo, callRecord(call, cls.value, note, reply.exitCode, started, Date.now()));
    } catch (err) {
      this.log.warn({ err: errorMessage(err), file: recordTo }, "cannot append to ORION_RECORD");
    }
    return reply;
  }

  /** One call, with what the cache did with it and how the call was read: for a caller that reports each call (orion build's shims). */
  async handleNoted(call: CompilerCall): Promise<{ reply: CompilerReply; note: CallNote; cls?: Classification }> {
    const note: CallNote = { outcome: "uncacheable" };
    const cls = { value: undefined as Classification | undefined };
    const reply = await this.serve(call, note, cls);
    return { reply, note, cls: cls.value };
  }

  private async serve(call: CompilerCall, note: CallNote, clsOut?: { value?: Classification }): Promise<CompilerReply> {
    const name = call.argv[0];
    if (name === undefined) return notFoundReply("(no compiler named)");
    const exe = findCompiler(name, call.cwd, call.env, { selfPaths: this.selfPaths, skipDirs: masqueradeDirs(call.env) });
    if (!exe) return notFoundReply(name);
    note.program = exe;
    const cls = classifyCall(call.argv, call.cwd, call.env);
    if (clsOut) clsOut.value = cls;
    if (!cls.cacheable || this.o.noCache) {
      this.log.debug({ argv: call.argv, reason: this.o.noCache ? "no-cache" : cls.reason }, "not cacheable; running the compiler");
      this.bump("uncacheable");
      return this.passThrough(exe, call);
    }

    if (cls.args.kind === "depgen" && cls.args.sources.length > 1 && cls.args.depOutput === undefined) {
      return this.depgenPerSource(exe, call, cls, note);
    }
    return this.cached(exe, call, cls, note, true);
  }

  /**
   * `-M`/`-MM` over many sources to stdout is one independent run per source, its output their concatenation (stdout
   * and stderr, in argv order): each source is cached on its own, so a header that changes on every build (Redis's
   * release.h, read only by release.c) re-runs one source, not the whole list. Sources run a few at a time.
   */
  private async depgenPerSource(exe: string, call: CompilerCall, cls: Classification, note: CallNote): Promise<CompilerReply> {
    const at = cls.args.sourceIndices;
    const others = new Set(at);
    const subs: CompilerCall[] = at.map((i) => ({ ...call, argv: call.argv.filter((_, j) => j === i || !others.has(j)) }));
    const notes: CallNote[] = subs.map(() => ({ outcome: "uncacheable" }));
    const replies: (CompilerReply | undefined)[] = new Array(subs.length);
    const keys: (CcCompile | undefined)[] = new Array(subs.length);

    // Look-ups first (cheap): what is left runs, each source on its own for its exact output, and ONE -M -MG pass over
    // all of them (split by rule: without -MP it writes exactly one rule per source) names what each looked for.
    try {
      for (let n = 0; n < subs.length; n++) {
        const sub = subs[n]!;
        const { key, hit } = await this.lookUp(exe, sub, classifyCall(sub.argv, sub.cwd, sub.env), notes[n]!);
        keys[n] = key;
        replies[n] = hit;
      }
    } catch (err) {
      return this.lookUpFailed(err, exe, call, note);
    } finally {
      this.flushStatCache();
    }
    const missed = subs.map((_, n) => n).filter((n) => replies[n] === undefined && keys[n] !== undefined);

    // At most DEPGEN_PARALLEL compilers at once, the -M -MG passes among them; a source whose compiler has exited
    // waits for its pass without holding a slot.
    const slots = new Slots(DEPGEN_PARALLEL);
    // The pass runs as DEPGEN_PARALLEL passes over consecutive shares of the sources, not one: a -M -MG pass reads as
    // much as the run it keys, and one pass over all of them alone on one core was the long pole of a call make waits
    // on whole (Redis's `-MM *.c` for its Makefile.dep: 3.9 s where make's own call takes 1.4).
    const share = Math.ceil(missed.length / DEPGEN_PARALLEL);
    const passes = new Map<number, Promise<string | undefined>>();
    for (let from = 0; from < missed.length; from += share) {
      const part = missed.slice(from, from + share);
      const partSet = new Set(part.map((n) => at[n]!));
      const rules = slots.run(() => this.everyHeaderRules(exe, { ...call, argv: call.argv.filter((_, j) => !others.has(j) || partSet.has(j)) }, part.length));
      part.forEach((n, i) => passes.set(n, rules.then((r) => r?.[i])));
    }
    await Promise.all(
      subs.map(async (sub, n) => {
        if (replies[n]) return;
        const key = keys[n];
        if (!key) {
          this.bump("uncacheable");
          replies[n] = await slots.run(() => runCaptured(exe, sub));
          return;
        }
        notes[n]!.outcome = "miss";
        replies[n] = await this.miss(key, notes[n]!, passes.get(n), slots);
      }),
    );
    const done = replies as CompilerReply[];
    note.outcome = notes.every((x) => x.outcome === "hit") ? "hit" : notes.some((x) => x.outcome === "fallback") ? "fallback" : "miss";
    note.headers = [...new Set(notes.flatMap((x) => x.headers ?? []))];
    return {
      exitCode: Math.max(0, ...done.map((r) => r.exitCode)),
      stdout: Buffer.concat(done.map((r) => r.stdout)),
      stderr: Buffer.concat(done.map((r) => r.stderr)),
    };
  }

  /** The -M -MG pass over a depgen call's sources, one rule text per source in argv order; undefined when that split is not certain. */
  private async everyHeaderRules(exe: string, call: CompilerCall, sources: number): Promise<string[] | undefined> {
    const r = await runCaptured(exe, { ...call, argv: depgenEveryHeaderArgv(call.argv) });
    if (!isOrdinaryExit(r.exitCode)) return undefined;
    const rules = depfileRules(r.stdout.toString("utf8"));
    return rules.length === sources ? rules : undefined;
  }

  /** A call's key and, on a hit, its reply (counted); no key when a source or forced include cannot be read. */
  private async lookUp(exe: string, call: CompilerCall, cls: Classification, note: CallNote): Promise<{ key?: CcCompile; hit?: CompilerReply }> {
    const key = await this.compileKey(exe, call, cls);
    const hit = key ? await this.lookup(key, note) : undefined;
    if (hit) {
      this.bump("hits");
      note.outcome = "hit";
    }
    return { key, hit };
  }

  /** Orion's own machinery failed before the compiler ran: say why in the log, count it, and run the call as is. */
  private lookUpFailed(err: unknown, exe: string, call: CompilerCall, note: CallNote): Promise<CompilerReply> {
    this.log.warn({ err: errorMessage(err), argv: call.argv }, "cache look-up failed; running the compiler directly");
    this.bump("fallbacks");
    note.outcome = "fallback";
    return runCaptured(exe, call);
  }

  /** The cache path of one cacheable call; `handBack`: a call that turns out uncacheable may go back to the client. */
  private async cached(exe: string, call: CompilerCall, cls: Classification, note: CallNote, handBack: boolean): Promise<CompilerReply> {
    let key: CcCompile | undefined;
    try {
      const found = await this.lookUp(exe, call, cls, note);
      if (found.hit) return found.hit;
      key = found.key;
    } catch (err) {
      return this.lookUpFailed(err, exe, call, note);
    } finally {
      this.flushStatCache();
    }
    if (!key) {
      // The source or a forced include is not a readable file: the compiler's own answer is the one to give.
      this.bump("uncacheable");
      return handBack ? this.passThrough(exe, call) : runCaptured(exe, call);
    }
    note.outcome = "miss";
    return this.miss(key, note);
  }

  close(): void {
    this.clock?.close();
    this.clock = undefined;
    for (const farm of this.farms.values()) farm.close();
    this.farms.clear();
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
    if (this.o.uncachedRunInClient && !call.env.ORION_RECORD) {
      return Promise.resolve({ exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), runInClient: true });
    }
    return (this.o.passThrough ?? runCaptured)(exe, call);
  }

  /** The cache's stores, opened on first use: for a caller that caches other tools' calls beside this one's (links). */
  openStores(): Stores {
    return this.open();
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

  /** Level 1 and what level 2 needs; undefined when a source or forced include is not a readable file (the compiler will say why). */
  private async compileKey(exe: string, call: CompilerCall, cls: Classification): Promise<CcCompile | undefined> {
    const { args } = cls;
    const view = new StatFileView(call.cwd, () => this.open().statCache);
    const inputs = await readCompileInputs(view, args);
    if (!inputs) return undefined;
    const toolchain = await detectToolchain(exe, { env: call.env, memoFile: toolchainMemoFiles(this.o.cacheDir, call.env) });
    // Tree paths are relative to the call's cwd, so the working dir enters as "." — or absolute when the object embeds it.
    const key = compileKey(view, { toolchain: toolchain.digest, argv: call.argv, args, cwd: { key: ".", abs: call.cwd }, env: keyEnv(call.env) }, inputs);
    const sources = inputs.sources.map(({ path, digest }) => {
      const abs = resolve(call.cwd, path);
      return { abs, stat: view.hashed.get(abs)!, digest };
    });
    const options = { probeOutside: true, systemIncludeDirs: toolchain.systemIncludeDirs, probeMemo: this.probeMemo(call.cwd) };
    return { exe, call, cls, toolchain, key, options, sources };
  }

  /** Shadow-probe answers of calls in `cwd`, kept while the directory listings they read are unchanged. */
  private probeMemo(cwd: string): ProbeMemo {
    return (key, compute) => {
      const memoKey = `${cwd}\0${key}`;
      const memo = this.probeMemos.get(memoKey);
      if (memo && this.dirs.unchanged(memo.dirs)) return memo.probes;
      const session = this.dirs.session();
      const probes = compute((p) => session.exists(resolve(cwd, p)));
      const dirs = session.snapshot();
      if (this.probeMemos.size >= PROBE_MEMO_MAX) this.probeMemos.clear();
      if (dirs) this.probeMemos.set(memoKey, { dirs, probes });
      else this.probeMemos.delete(memoKey);
      return probes;
    };
  }

  /** A hit restores the outputs and replays stdout/stderr; undefined on a miss (or when a stored blob vanished meanwhile). */
  private async lookup(k: CcCompile, note: CallNote): Promise<CompilerReply | undefined> {
    const { store, cache, statCache } = this.open();
    const cwd = k.call.cwd;
    // Presence is checked where it matters, by copying each blob out below (absent → a miss): checking it first as well
    // would cost a stat and an index read per blob on every hit.
    const present = { findMissing: async () => [] };
    const result = await lookupCompiled(k.key, new StatFileView(cwd, () => statCache), cache, present, k.options, (headers) => {
      note.headers = headers.filter((h) => !isAbsentHeader(h.digest)).map((h) => h.path);
    });
    if (!result) return undefined;
    const [stdout, stderr] = await Promise.all([blob(store, result.stdoutRaw, result.stdoutDigest), blob(store, result.stderrRaw, result.stderrDigest)]);
    if (!stdout || !stderr) return undefined;
    for (const of of result.outputFiles) {
      const dest = resolve(cwd, of.path);
      // A missing output dir is the compiler's error to report, with its own words: placeOutput declines it.
      // The archive or link that reads it next finds its digest without reading it back (Redis's touched server.h:
      // 56 objects, ~10 MB, hashed again per build); one already in place gets new times only.
      if (!(await placeOutput(store, statCache, of.digest!, dest, of.isExecutable))) return undefined;
    }
    return { exitCode: result.exitCode, stdout, stderr };
  }

  /**
   * A miss: with ORION_HEAD set, a compile a node can run goes to the farm; when the farm cannot take it, it compiles here
   * (said once, counted in `fallbacks`) — or, with ORION_NO_FALLBACK=1, fails with exit code 3.
   */
  private async miss(k: CcCompile, note: CallNote, everyHeaderRules?: Promise<string | undefined>, slots?: Slots): Promise<CompilerReply> {
    const head = k.call.env.ORION_HEAD;
    if (!head || k.cls.args.kind !== "compile") return this.localMiss(k, note, everyHeaderRules, slots);
    const farmed = await this.farmMiss(k, note, head);
    if ("reply" in farmed) return farmed.reply;
    const reply = await this.localMiss(k, note, everyHeaderRules, slots);
    return farmed.notice ? { ...reply, stderr: Buffer.concat([Buffer.from(farmed.notice), reply.stderr]) } : reply;
  }

  /** The farm's answer to a miss (`reply`), or nothing when it is compiled here — with the one line to say why (`notice`), the first time. */
  private async farmMiss(k: CcCompile, note: CallNote, head: string): Promise<{ reply: CompilerReply } | { notice?: string }> {
    const env = k.call.env;
    // Headers changed after this point may have changed while the context was hashed: not stored (see record()).
    const tooNewNs = compileStartNs(this.fileClock());
    let outcome: FarmOutcome;
    try {
      const mod = await import("./farm.js");
      const plan = mod.planFarmCompile(k.exe, k.call.argv, k.call.cwd, k.cls.args, mod.findProjectRoot(k.call.cwd, env), keyEnv(env));
      if (typeof plan === "string") {
        this.log.debug({ argv: k.call.argv, reason: plan }, "compiled here, not on the farm");
        return {};
      }
      const farm = this.farm(env, k.call.cwd, head, mod.CcFarm);
      outcome = await farm.compile(plan, k.call.cwd, k.toolchain.digest, keyEnv(env));
    } catch (err) {
      outcome = { kind: "unavailable", reason: errorMessage(err), unreachable: false };
    }
    if (outcome.kind === "unavailable") {
      const why = outcome.unreachable ? `farm at ${head} unreachable (${outcome.reason})` : `farm at ${head}: ${outcome.reason}`;
      if (env.ORION_NO_FALLBACK === "1" || env.ORION_NO_FALLBACK === "true") {
        this.bump("misses");
        return { reply: { exitCode: ExitCode.INFRASTRUCTURE, stdout: Buffer.alloc(0), stderr: Buffer.from(`orion cc: ${why}; not compiling locally (ORION_NO_FALLBACK=1)\n`) } };
      }
      this.bump("fallbacks");
      if (this.farmNoticed.has(head)) return {};
      this.farmNoticed.add(head);
      return { notice: `orion cc: ${why}; compiling locally\n` };
    }
    this.bump("misses");
    this.bump("remoteCompiles");
    note.remote = outcome.node ?? true;
    // The farm's own cache had it: a hit for whoever counts (orion build's events), though this cache missed.
    if (outcome.cached) note.outcome = "hit";
    const reply: CompilerReply = { exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr };
    if (outcome.exitCode === 0 && outcome.depfile !== undefined) {
      try {
        note.headers = await this.record(k, reply, outcome.depfile, tooNewNs);
      } catch (err) {
        this.log.warn({ err: errorMessage(err), argv: k.call.argv }, "storing a farm compile's result failed; the compile itself succeeded");
        this.bump("fallbacks");
      } finally {
        this.flushStatCache();
      }
    }
    return { reply };
  }

  private farm(env: Record<string, string>, cwd: string, address: string, make: typeof CcFarm): CcFarm {
    const token = env.ORION_TOKEN || undefined;
    const file = (name: string) => (env[name] ? resolve(cwd, env[name]) : undefined);
    const [tlsCa, tlsCert, tlsKey] = [file("ORION_TLS_CA"), file("ORION_TLS_CERT"), file("ORION_TLS_KEY")];
    const key = [address, token, tlsCa, tlsCert, tlsKey].map((v) => v ?? "").join("\0");
    let farm = this.farms.get(key);
    if (!farm) {
      farm = new make({ address, token, tlsCa, tlsCert, tlsKey, statCache: this.open().statCache, cacheDir: this.o.cacheDir, logger: this.o.logger });
      this.farms.set(key, farm);
    }
    return farm;
  }

  /** The kernel's file clock, read in the scratch folder. */
  private fileClock(): FileClock {
    return (this.clock ??= new FileClock(this.scratchDir()));
  }

  /** The cache dir's scratch folder (temp depfiles, the file clock), made on first use. */
  private scratchDir(): string {
    const dir = join(this.o.cacheDir, "tmp");
    if (!this.scratchMade) {
      try {
        makeDirSync(dir);
        this.scratchMade = true;
      } catch {
        /* its users fall back or fail on their own */
      }
    }
    return dir;
  }

  /** `everyHeaderRules`: for a depgen, its -M -MG rule when a batch pass computes it (undefined: not known, do not store). */
  private async localMiss(k: CcCompile, note: CallNote, everyHeaderRules?: Promise<string | undefined>, slots?: Slots): Promise<CompilerReply> {
    const { args } = k.cls;
    const cwd = k.call.cwd;
    const depgen = args.kind === "depgen";
    let tmpDepfile: string | undefined;
    const extra: string[] = [];
    if (!args.depfile && !depgen) {
      // The user asked for no depfile: ask for one in a temp file to learn the headers, and remove it afterwards.
      const tmpDir = join(this.o.cacheDir, "tmp");
      try {
        makeDirSync(tmpDir);
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
    const tooNewNs = compileStartNs(this.fileClock());
    // -M/-MM skip a missing <header> without a word, so their rules alone do not say what must stay absent: a second
    // pass with -M -MG (run alongside) names every header looked for, found or not, system ones included.
    const [reply, everyHeader] = await Promise.all([
      slots ? slots.run(() => runCaptured(k.exe, k.call, extra)) : runCaptured(k.exe, k.call, extra),
      !depgen
        ? undefined
        : everyHeaderRules
          ? everyHeaderRules.then((text) => (text === undefined ? undefined : { exitCode: 0, stdout: Buffer.from(text), stderr: Buffer.alloc(0) }))
          : runCaptured(k.exe, { ...k.call, argv: depgenEveryHeaderArgv(k.call.argv) }),
    ]);
    try {
      if (depgen) {
        // A depgen's output is a function of the files it read and the headers it did not find, both known here, so
        // even a failed one (Redis's `-MM *.c` before jemalloc.h is generated) replays exactly. A compile's error is
        // the user's answer: never cached.
        if (isOrdinaryExit(reply.exitCode) && everyHeader && isOrdinaryExit(everyHeader.exitCode)) {
          const own = args.depOutput === undefined ? reply.stdout.toString("utf8") : await readFile(resolve(cwd, args.depOutput), "utf8").catch(() => "");
          note.headers = await this.record(k, reply, `${own}\n${everyHeader.stdout.toString("utf8")}`, tooNewNs);
        }
      } else if (reply.exitCode === 0) {
        note.headers = await this.record(k, reply, await readFile(tmpDepfile ?? resolve(cwd, args.depfile!.path), "utf8"), tooNewNs);
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err), argv: k.call.argv }, "storing a compile result failed; the compile itself succeeded");
      this.bump("fallbacks");
    } finally {
      this.flushStatCache();
      if (tmpDepfile) await rm(tmpDepfile, { force: true }).catch(() => undefined);
    }
    return reply;
  }

  /**
   * Stores a successful compile (through the compile-cache protocol): its outputs and diagnostics under level 2, the
   * headers its depfile named as a manifest under level 1. Returns the headers it learned (present ones), or undefined
   * when nothing was stored.
   */
  private async record(k: CcCompile, reply: CompilerReply, rules: string, tooNewNs: bigint): Promise<string[] | undefined> {
    const { store, cache, statCache } = this.open();
    const { args } = k.cls;
    const cwd = k.call.cwd;
    for (const src of k.sources) {
      const now = await stat(src.abs, { bigint: true });
      const unchanged = sameStat(now, src.stat);
      // A source written just before the call (a configure probe's conftest.c) is hashed again: the digest the key
      // was made from, before the compiler started, must still be its content now that it has finished — so the
      // compiler read those bytes too (short of the file changing and changing back while it ran).
      if (!unchanged || (changedSince(now, tooNewNs) && !sameDigest(await digestOfFile(src.abs), src.digest))) {
        this.log.debug({ source: src.abs }, "source changed around the compile; not stored");
        return;
      }
    }
    const depgen = args.kind === "depgen";
    const view = new StatFileView(cwd, () => statCache, tooNewNs);
    // Only a depgen's failure reaches here (see localMiss()); its output is as reproducible as a success, and only its
    // -MG pass names headers that do not exist: recorded as "must stay absent".
    const outcome = await recordCompiled(k.key, view, cache, depfileInputs(rules), () => this.resultOf(k, reply, store), {
      ...k.options,
      absentHeaders: depgen,
      storeFailure: depgen,
    });
    if (!("notStored" in outcome)) return outcome.headers.filter((h) => !isAbsentHeader(h.digest)).map((h) => h.path);
    if (outcome.notStored === "missing") throw new Error(`the depfile names ${outcome.path}, which is not a file`);
    if (outcome.notStored === CHANGING) this.log.debug({ header: resolve(cwd, outcome.path) }, "header changed around the compile; not stored");
    return undefined;
  }

  /** A compile's result: its outputs put in the store, its diagnostics inline. */
  private async resultOf(k: CcCompile, reply: CompilerReply, store: BlobStore): Promise<ActionResult> {
    const { args } = k.cls;
    const outputFiles: OutputFile[] = [];
    const { statCache } = this.open();
    const put = async (path: string): Promise<void> => {
      const abs = resolve(k.call.cwd, path);
      const before = await stat(abs, { bigint: true });
      const digest = await store.putFile(abs);
      // Hashed as it was stored: the archive or link that reads it next need not read it again, unless it changed meanwhile.
      const after = await stat(abs, { bigint: true });
      if (sameStat(after, before)) statCache.remember(abs, after, digest);
      outputFiles.push({ path, digest, isExecutable: false, contents: Buffer.alloc(0) });
    };
    if (args.kind === "depgen") {
      if (args.depOutput !== undefined) await put(args.depOutput);
    } else {
      await put(args.output!);
      if (args.depfile) await put(args.depfile.path);
    }
    return ActionResult.fromPartial({
      outputFiles,
      exitCode: reply.exitCode,
      stdoutRaw: reply.stdout,
      stdoutDigest: digestOf(reply.stdout),
      stderrRaw: reply.stderr,
      stderrDigest: digestOf(reply.stderr),
    });
  }
}

/** Bytes inlined in the result, or fetched from the store by digest; undefined when neither has them. */
async function blob(store: BlobStore, inline: Uint8Array | undefined, digest: Digest | undefined): Promise<Buffer | undefined> {
  if (!digest || digest.sizeBytes === 0) return Buffer.alloc(0);
  if (inline && inline.length === digest.sizeBytes) return Buffer.from(inline);
  return store.get(digest);
}

/** A counting semaphore: at most `n` of the functions given to run() are running at once. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** An exit code the compiler chose (not a signal's 128+n, not "could not run"). */
function isOrdinaryExit(code: number): boolean {
  return code >= 0 && code < 126;
}

/** A depgen call's argv turned into the -M -MG pass that lists every header looked for, on stdout. */
function depgenEveryHeaderArgv(argv: readonly string[]): string[] {
  const out = [argv[0]!];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-M" || a === "-MM" || a === "-MP") continue; // no -MP: exactly one rule per source
    if (a === "-MF" || a === "-o") {
      i++;
      continue;
    }
    if ((a.startsWith("-MF") && a.length > 3) || (a.startsWith("-o") && a.length > 2)) continue; // joined -MFfile, -ofile
    out.push(a);
  }
  out.push("-M", "-MG");
  return out;
}

/** The masquerade dir the launcher names (ORION_MASQUERADE_DIR): never searched for the real compiler. */
function masqueradeDirs(env: Record<string, string | undefined>): string[] {
  const d = env.ORION_MASQUERADE_DIR;
  return d ? [d] : [];
}
