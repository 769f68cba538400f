// The compile-cache protocol, written once for the head and `orion cc`: level-1 key → manifests → level-2 key (headers and shadow probes), look-up and record, over a FileView.
import { posix } from "node:path";
import { type Digest, digestOf } from "../core/digest.js";
import { type ActionResult, CompileManifest } from "../gen/orion/v1/remote_execution.js";
import { type ActionCache, lookupCompile } from "./action-cache.js";
import type { CompileArgs } from "../compile/index.js";
import { CHANGING, type FileView } from "./file-view.js";
import { ABSENT_HEADER, compileLevel1Key, compileLevel2Key, keyWorkingDir, normalizeArgv, shadowProbes } from "./keys.js";

/** Headers under these prefixes belong to the toolchain (its digest covers them): never in a manifest, so never a stat per look-up. */
export const SYSTEM_PREFIXES: readonly string[] = ["/usr/", "/lib/", "/lib64/"];

/**
 * Keeps shadow-probe answers under `key` while what they read is unchanged (orion cc: its directory listings); otherwise
 * runs `compute` with the existence check the memo watches, and keeps its answer.
 */
export type ProbeMemo = (key: string, compute: (exists: (keyPath: string) => boolean) => string[]) => string[];

/** Where the two callers really differ: each an explicit choice, not a fork of the protocol. */
export interface CompileCacheOptions {
  /**
   * Shadow-probe absolute key paths too (orion cc, whose view is the file system). The head probes its tree only:
   * headers and search dirs outside it are left out of the probes (their digests still enter the key).
   */
  probeOutside: boolean;
  /** Dirs whose headers belong to the toolchain besides SYSTEM_PREFIXES (orion cc: the detected toolchain's systemIncludeDirs). */
  systemIncludeDirs?: readonly string[];
  probeMemo?: ProbeMemo;
}

/** What a compile is keyed by, computed once per compile. */
export interface CompileKey {
  level1: string;
  /** The sources as key paths (left out of the manifest), with their digests at key time. */
  sources: { path: string; digest: Digest }[];
  /** The search dirs as key paths (the sources' dirs, -iquote, -I, -isystem, -idirafter), for shadow probes. */
  searchDirs: string[];
}

/** The files a compile's level-1 key is made of, by content. */
export interface CompileInputs {
  sources: { path: string; digest: Digest }[];
  forcedIncludeDigests: Digest[];
}

/** The call as the level-1 key reads it, beside its inputs. */
export interface CompileCall {
  /** The toolchain's digest. */
  toolchain: string;
  argv: readonly string[];
  args: CompileArgs;
  /** The working dir as the key names it when the object does not embed it (`key`), and where it really is (`abs`). */
  cwd: { key: string; abs: string };
  /** The environment that enters the key, sorted by name. */
  env: [string, string][];
}

/** A header list for a manifest, or why the result is not stored: a header that is not a file (`missing`) or changed while it was read. */
export type CompileManifestOutcome = { headers: { path: string; digest: Digest }[] } | { notStored: "missing" | typeof CHANGING; path: string };

/** What recordCompiled stored (the manifest's headers), or why it stored nothing (a failed result is `failed`). */
export type CompileRecordOutcome = CompileManifestOutcome | { notStored: "failed" };

export interface RecordOptions {
  /** A header the depfile names that is not a file is recorded as "must stay absent" (a depgen's -MG pass) instead of refusing the record. */
  absentHeaders?: boolean;
  /** Store a failed result too: the caller knows every input the failure depends on (orion cc's depgen). */
  storeFailure?: boolean;
}

/** The sources and forced includes by content; undefined when one is not a readable file (then the compile is not cached). */
export async function readCompileInputs(view: FileView, args: Pick<CompileArgs, "sources" | "forcedIncludes">): Promise<CompileInputs | undefined> {
  const sources: CompileInputs["sources"] = [];
  for (const spelled of args.sources) {
    const path = view.keyPath(spelled);
    const digest = await view.digestOf(path);
    if (!digest) return undefined;
    sources.push({ path, digest });
  }
  const forcedIncludeDigests: Digest[] = [];
  // gcc looks for -include FILE in the cwd first; one found only along the search path is left to the compiler.
  for (const f of args.forcedIncludes) {
    const digest = await view.digestOf(view.keyPath(f));
    if (!digest) return undefined;
    forcedIncludeDigests.push(digest);
  }
  return { sources, forcedIncludeDigests };
}

/** Level 1 and what level 2 needs. */
export function compileKey(view: FileView, call: CompileCall, inputs: CompileInputs): CompileKey {
  const digests = inputs.sources.map((s) => s.digest);
  // One source (a compile): its digest. Several (-MM a.c b.c): the digest of their digests in argv order (argv, in the
  // key too, says which is which).
  const sourceDigest = digests.length === 1 ? digests[0]! : digestOf(Buffer.from(digests.map((d) => `${d.hash}/${d.sizeBytes}`).join("\n")));
  const level1 = compileLevel1Key({
    toolchain: call.toolchain,
    argv: normalizeArgv(call.argv, { digest: call.toolchain }),
    workingDir: keyWorkingDir(call.args, call.cwd.key, call.cwd.abs),
    env: call.env,
    sourceDigest,
    forcedIncludeDigests: inputs.forcedIncludeDigests,
  });
  const { args } = call;
  const sourceDirs = [...new Set(args.sources.map((p) => posix.dirname(p)))];
  const searchDirs = [...sourceDirs, ...args.iquoteDirs, ...args.includeDirs, ...args.isystemDirs, ...args.idirafterDirs].map((d) => view.keyPath(d));
  return { level1, sources: inputs.sources, searchDirs };
}

/** The shadow probes of a header list (see shadowProbes), within the scope and through the memo the options name. */
export function compileProbes(key: CompileKey, view: FileView, headers: readonly string[], options: CompileCacheOptions): string[] {
  const inScope = (p: string): boolean => options.probeOutside || !posix.isAbsolute(p);
  const probed = headers.filter(inScope);
  const dirs = key.searchDirs.filter(inScope);
  const run = (exists: (keyPath: string) => boolean): string[] => shadowProbes(probed, dirs, exists);
  return options.probeMemo ? options.probeMemo(`${dirs.join("\0")}\u0001${probed.join("\0")}`, run) : run((p) => view.exists(p));
}

/**
 * The look-up: each manifest under level 1 (newest first) whose headers still have their digests, with the probes,
 * makes a level-2 key; the first with a result whose blobs `store` still holds is the hit. `onMatch` is told its headers.
 */
export function lookupCompiled(
  key: CompileKey,
  view: FileView,
  cache: Pick<ActionCache, "getManifests" | "getResult">,
  store: { findMissing(d: Digest[], o?: { verify?: boolean }): Promise<Digest[]> },
  options: CompileCacheOptions,
  onMatch?: (headers: { path: string; digest: Digest }[]) => void,
): Promise<ActionResult | undefined> {
  return lookupCompile(cache, store, key.level1, (h) => view.digestOf(h), (headers) => compileProbes(key, view, headers, options), onMatch);
}

/**
 * Which headers of a depfile enter the manifest: every prerequisite but the sources, once each, by key path, except the
 * toolchain's own (absolute, under SYSTEM_PREFIXES or the options' systemIncludeDirs), each with the digest the compile
 * read. A header that cannot be named by content makes the result uncacheable: never cache what we cannot key.
 */
export async function compileManifest(
  key: CompileKey,
  view: FileView,
  deps: readonly string[],
  options: CompileCacheOptions & RecordOptions,
): Promise<CompileManifestOutcome> {
  const sources = new Set(key.sources.map((s) => s.path));
  const headers: { path: string; digest: Digest }[] = [];
  const seen = new Set<string>();
  for (const dep of deps) {
    const path = view.keyPath(dep);
    if (sources.has(path) || seen.has(path)) continue;
    seen.add(path);
    if (posix.isAbsolute(path) && isSystemHeader(path, options.systemIncludeDirs ?? [])) continue;
    const digest = await view.readDigestOf(path);
    if (digest === CHANGING) return { notStored: CHANGING, path };
    if (digest === undefined && !options.absentHeaders) return { notStored: "missing", path };
    headers.push({ path, digest: digest ?? ABSENT_HEADER });
  }
  headers.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { headers };
}

/**
 * Records a finished compile: the manifest of its depfile's headers under level 1, its result under level 2. `result` may
 * be a function, called only once the manifest is known (orion cc stores the outputs' blobs then). A failed result is
 * not stored unless `storeFailure` says so.
 */
export async function recordCompiled(
  key: CompileKey,
  view: FileView,
  cache: Pick<ActionCache, "putResult" | "addManifest">,
  deps: readonly string[],
  result: ActionResult | (() => Promise<ActionResult>),
  options: CompileCacheOptions & RecordOptions,
): Promise<CompileRecordOutcome> {
  const manifest = await compileManifest(key, view, deps, options);
  if (!("headers" in manifest)) return manifest;
  const { headers } = manifest;
  const r = typeof result === "function" ? await result() : result;
  if (r.exitCode !== 0 && !options.storeFailure) return { notStored: "failed" };
  const probes = compileProbes(key, view, headers.map((h) => h.path), options);
  cache.putResult(compileLevel2Key(key.level1, headers, probes), r, { storeFailure: options.storeFailure });
  cache.addManifest(key.level1, CompileManifest.fromPartial({ headers }));
  return manifest;
}

function isSystemHeader(abs: string, systemIncludeDirs: readonly string[]): boolean {
  return SYSTEM_PREFIXES.some((p) => abs.startsWith(p)) || systemIncludeDirs.some((d) => abs.startsWith(d.endsWith("/") ? d : `${d}/`));
}
