// Turns one graph action into what a node runs (Command, Action, input root) and into its
// cache keys (DESIGN.md, Contract: action keys), and records results back into the cache.
// Compiles run against the whole source context and are keyed in two levels; archives and
// links run against a small input root of exactly the files their argv names.
import { posix } from "node:path";
import { type Digest, digestKey, digestOfMessage, parseDigestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import {
  type ActionCache,
  type CompileCacheOptions,
  type CompileKey,
  compileKey,
  linkKey,
  lookupCompiled,
  lookupValid,
  normalizeArgv,
  parseDepfile,
  readCompileInputs,
  recordCompiled,
  resolveLibraries,
} from "../cache/index.js";
import { compileNeverReads, parseCompileArgs, toolFamily } from "../compile/index.js";
import { buildTree, type PruneMemo, pruneTree } from "../merkle/index.js";
import { ArgvRefusedError, commandRefusal } from "../exec/argv-policy.js";
import { Action, type ActionResult, Command, Directory } from "../gen/orion/v1/remote_execution.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import { type BuildView, buildFileView, lookupFile } from "./build-file-view.js";
import { toTreePath } from "./context-index.js";

export type { BuildView } from "./build-file-view.js";

export interface PrepareDeps {
  store: BlobStore;
  cache: ActionCache;
  /** Digest of a file outside the project tree (a header under -I/opt/..., a system library); undefined when unreadable. */
  externalDigest(absPath: string): Promise<Digest | undefined>;
  /** Remembers pruned directories across contexts (see compileInputRoot); absent: each context is pruned from scratch. */
  pruneMemo?: PruneMemo;
}

export interface Prepared {
  command: Command;
  action: Action;
  inputRoot: Digest;
  /** Compile: the level-1 key its manifests hang off. */
  level1?: string;
  /** Compile: its key (level 1, its source, its search dirs as tree paths) for the compile-cache protocol. */
  compile?: CompileKey;
  /** Archive/link: the action-cache key. */
  key?: string;
  /** Archive/link: the blobs of its small input root (where they live decides which peers a node asks). */
  inputBlobs?: Digest[];
  /** A valid cached result, when the cache had one. */
  cached?: ActionResult;
}

/** The head's choices in the compile-cache protocol: probes stay inside the build's tree (outside, each would cost a stat). */
const HEAD_COMPILE_CACHE: CompileCacheOptions = { probeOutside: false };

/** An action's input root and, when it may be cached, its key. */
interface Keyed {
  inputRoot: Digest;
  cacheable: boolean;
  compile?: CompileKey;
  key?: string;
  inputBlobs?: Digest[];
}

export async function prepareAction(a: GraphAction, view: BuildView, deps: PrepareDeps): Promise<Prepared> {
  const cwdAbs = a.cwd ? posix.join(view.projectRoot, a.cwd) : view.projectRoot;
  await checkArgvPolicy(a, view, deps, cwdAbs);
  const command = commandOf(a);
  const env = command.environmentVariables.map((e) => [e.name, e.value] as [string, string]);
  const keyed = a.kind === "compile" ? await keyCompile(a, env, view, deps, cwdAbs) : await keyArchiveOrLink(a, env, view, deps, cwdAbs);
  // Named, not stored: a lease carries its Command inline, so the store never needs the blob.
  const commandDigest = digestOfMessage(Command, command);
  const action: Action = {
    commandDigest,
    inputRootDigest: keyed.inputRoot,
    timeout: undefined,
    doNotCache: !keyed.cacheable,
    salt: Buffer.alloc(0),
    platform: command.platform,
  };
  const { inputRoot, compile, key, inputBlobs } = keyed;
  const prepared: Prepared = { command, action, inputRoot, level1: compile?.level1, compile, key, inputBlobs };
  if (keyed.cacheable) prepared.cached = await lookup(a, prepared, view, deps);
  return prepared;
}

function commandOf(a: GraphAction): Command {
  return {
    arguments: a.arguments,
    environmentVariables: [...a.environmentVariables].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
    workingDirectory: a.cwd,
    outputPaths: a.outputs.map((o) => posix.relative(a.cwd || ".", o)),
    platform: { properties: [{ name: "toolchain", value: a.toolchain }] },
  };
}

/** A compile runs against the whole context and is keyed in two levels (the compile-cache protocol). */
async function keyCompile(a: GraphAction, env: [string, string][], view: BuildView, deps: PrepareDeps, cwdAbs: string): Promise<Keyed> {
  const inputRoot = await compileInputRoot(view, deps);
  if (view.noCache) return { inputRoot, cacheable: false };
  // `cc -c x.c` writes x.o in its cwd: as cacheable as with `-o x.o` (the executor spells the -o out).
  const args = parseCompileArgs(a.arguments, { implicitOutput: true });
  const source = args.sources[0];
  // A source outside the project tree is not cached.
  if (!args.cacheable || source === undefined || toTreePath(view.projectRoot, a.cwd, source) === undefined) return { inputRoot, cacheable: false };
  const files = buildFileView(view, a.cwd, deps.externalDigest);
  // Keyed by its first source, as ever (a cacheable compile has exactly one).
  const keyArgs = { ...args, sources: [source] };
  const inputs = await readCompileInputs(files, keyArgs);
  if (!inputs) return { inputRoot, cacheable: false };
  const call = { toolchain: a.toolchain, argv: a.arguments, args: keyArgs, cwd: { key: a.cwd, abs: cwdAbs }, env };
  return { inputRoot, cacheable: true, compile: compileKey(files, call, inputs) };
}

/** Archives and links read exactly what their argv names (plus -l libraries): a small input root, one key. */
async function keyArchiveOrLink(a: GraphAction, env: [string, string][], view: BuildView, deps: PrepareDeps, cwdAbs: string): Promise<Keyed> {
  let cacheable = !view.noCache;
  const files = new Map<string, { digest: Digest; executable: boolean }>();
  const keyInputs: { path: string; digest: Digest }[] = [];
  for (const input of a.inputs) {
    const entry = lookupFile(view, input);
    if (!entry) {
      cacheable = false;
      continue;
    }
    files.set(input, entry);
    keyInputs.push({ path: input, digest: entry.digest });
  }
  for (const lib of resolveLibraries(a.arguments, cwdAbs, [])) {
    const tp = toTreePath(view.projectRoot, "", lib);
    const entry = tp !== undefined ? lookupFile(view, tp) : undefined;
    const digest = entry?.digest ?? (await deps.externalDigest(lib));
    if (tp !== undefined && entry) files.set(tp, entry);
    if (digest) keyInputs.push({ path: tp ?? lib, digest });
    else cacheable = false;
  }
  const tree = buildTree(files);
  await putDirectories(deps.store, tree.directories);
  const argv = normalizeArgv(a.arguments, { digest: a.toolchain });
  const key = cacheable ? linkKey({ toolchain: a.toolchain, argv, workingDir: a.cwd, env, inputs: keyInputs }) : undefined;
  return { inputRoot: tree.root, cacheable, key, inputBlobs: [...files.values()].map((f) => f.digest) };
}

/**
 * The argv policy (exec/argv-policy.ts) before an action is queued: a command that would run another program or reach
 * outside the project and the toolchain fails here, as the user's error naming the option and the output, before any
 * node sees it. An unknown tool is checked as a compiler driver (the node runs only compilers, archivers and linkers).
 */
async function checkArgvPolicy(a: GraphAction, view: BuildView, deps: PrepareDeps, cwdAbs: string): Promise<void> {
  const read = async (abs: string): Promise<string | undefined> => {
    const tp = toTreePath(view.projectRoot, "", abs);
    const entry = tp !== undefined ? lookupFile(view, tp) : undefined;
    return entry ? (await deps.store.get(entry.digest))?.toString("utf8") : undefined;
  };
  const checked = await commandRefusal(a.arguments, a.environmentVariables, { projectRoot: view.projectRoot, cwd: cwdAbs }, read, toolFamily(a.arguments[0]) ?? "driver");
  if ("refusal" in checked) throw new ArgvRefusedError(checked.refusal, a.outputs.length ? a.outputs.join(" ") : a.label || a.id);
}

/**
 * A compile's input root: the build's source context without what a compile never reads. Made once per context. Keys
 * do not change: a compile is keyed by its source, headers and argv, never by its input root.
 */
export function compileInputRoot(view: BuildView, deps: PrepareDeps): Promise<Digest> {
  // A tree that cannot be read here (a Directory blob missing) is left whole: the node then reports what it lacks, as before.
  return view.context.compileRoot(() => pruneTree(deps.store, view.context.root, compileNeverReads, deps.pruneMemo).catch(() => view.context.root));
}

async function lookup(a: GraphAction, p: Prepared, view: BuildView, deps: PrepareDeps): Promise<ActionResult | undefined> {
  if (p.key) return lookupValid(deps.cache, deps.store, p.key);
  if (!p.compile) return undefined;
  return lookupCompiled(p.compile, buildFileView(view, a.cwd, deps.externalDigest), deps.cache, deps.store, HEAD_COMPILE_CACHE);
}

/** Stores a successful result under its key; a compile also records the manifest of headers its depfile named. */
export async function recordResult(
  a: GraphAction,
  p: Prepared,
  result: ActionResult,
  depfile: string | undefined,
  view: BuildView,
  deps: PrepareDeps,
): Promise<void> {
  if (result.exitCode !== 0 || p.action.doNotCache) return;
  if (p.key) {
    deps.cache.putResult(p.key, result);
    return;
  }
  if (!p.compile || depfile === undefined) return;
  // One compile's depfile: the headers of its first rule's target. A header that cannot be named by content leaves it unstored.
  await recordCompiled(p.compile, buildFileView(view, a.cwd, deps.externalDigest), deps.cache, parseDepfile(depfile).deps, result, HEAD_COMPILE_CACHE);
}

async function putDirectories(store: BlobStore, directories: Map<string, Directory>): Promise<void> {
  // The map is keyed by digestKey already: name each blob by its key, encode only the missing ones.
  const digests = [...directories.keys()].map(parseDigestKey);
  for (const d of await store.findMissing(digests)) await store.put(Directory.encode(directories.get(digestKey(d))!).finish(), d);
}
