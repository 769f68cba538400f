// Turns one graph action into what a node runs (Command, Action, input root) and into its
// cache keys (DESIGN.md, Contract: action keys), and records results back into the cache.
// Compiles run against the whole source context and are keyed in two levels; archives and
// links run against a small input root of exactly the files their argv names.
import { posix } from "node:path";
import { type Digest, digestKey, digestOfMessage, parseDigestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import {
  type ActionCache,
  compileNeverReads,
  compileLevel1Key,
  compileLevel2Key,
  keyWorkingDir,
  linkKey,
  lookupCompile,
  lookupValid,
  normalizeArgv,
  parseCompileArgs,
  parseDepfile,
  resolveLibraries,
  shadowProbes,
} from "../cache/index.js";
import { buildTree, type PruneMemo, pruneTree } from "../merkle/index.js";
import { ArgvRefusedError, commandRefusal, toolFamily } from "../exec/argv-policy.js";
import {
  Action,
  type ActionResult,
  Command,
  CompileManifest,
  Directory,
} from "../gen/orion/v1/remote_execution.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import { type ContextEntry, type ContextIndex, toTreePath } from "./context-index.js";

export interface PrepareDeps {
  store: BlobStore;
  cache: ActionCache;
  /** Digest of a file outside the project tree (a header under -I/opt/..., a system library); undefined when unreadable. */
  externalDigest(absPath: string): Promise<Digest | undefined>;
  /** Remembers pruned directories across contexts (see compileInputRoot); absent: each context is pruned from scratch. */
  pruneMemo?: PruneMemo;
}

/** What the head knows of one build while preparing its actions. */
export interface BuildView {
  projectRoot: string;
  context: ContextIndex;
  /** Outputs of this build's finished actions, by tree path (newer than the context). */
  produced: Map<string, ContextEntry>;
  noCache: boolean;
}

export interface Prepared {
  command: Command;
  action: Action;
  inputRoot: Digest;
  /** Compile: the level-1 key its manifests hang off. */
  level1?: string;
  /** Compile: its search dirs as tree paths (the source's dir, -iquote, -I, -isystem, -idirafter), for shadow probes. */
  searchDirs?: string[];
  /** Compile: the source's tree path (left out of the manifest). */
  source?: string;
  /** Archive/link: the action-cache key. */
  key?: string;
  /** Archive/link: the blobs of its small input root (where they live decides which peers a node asks). */
  inputBlobs?: Digest[];
  /** A valid cached result, when the cache had one. */
  cached?: ActionResult;
}

/** Headers under these prefixes belong to the toolchain (its digest covers them); hashing them per look-up would cost a stat each. */
const SYSTEM_PREFIXES = ["/usr/", "/lib/", "/lib64/"];

export function lookupFile(view: BuildView, treePath: string): ContextEntry | undefined {
  return view.produced.get(treePath) ?? view.context.file(treePath);
}

export async function prepareAction(a: GraphAction, view: BuildView, deps: PrepareDeps): Promise<Prepared> {
  const cwdAbs = a.cwd ? posix.join(view.projectRoot, a.cwd) : view.projectRoot;
  await checkArgvPolicy(a, view, deps, cwdAbs);
  const command: Command = {
    arguments: a.arguments,
    environmentVariables: [...a.environmentVariables].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
    workingDirectory: a.cwd,
    outputPaths: a.outputs.map((o) => posix.relative(a.cwd || ".", o)),
    platform: { properties: [{ name: "toolchain", value: a.toolchain }] },
  };
  const env = command.environmentVariables.map((e) => [e.name, e.value] as [string, string]);
  const argvForKey = normalizeArgv(a.arguments, { digest: a.toolchain });
  let inputRoot: Digest;
  let level1: string | undefined;
  let searchDirs: string[] | undefined;
  let source: string | undefined;
  let key: string | undefined;
  let inputBlobs: Digest[] | undefined;
  let cacheable = !view.noCache;

  if (a.kind === "compile") {
    inputRoot = await compileInputRoot(view, deps);
    // `cc -c x.c` writes x.o in its cwd: as cacheable as with `-o x.o` (the executor spells the -o out).
    const args = parseCompileArgs(a.arguments, { implicitOutput: true });
    source = args.sources[0] !== undefined ? toTreePath(view.projectRoot, a.cwd, args.sources[0]) : undefined;
    const sourceEntry = source !== undefined ? lookupFile(view, source) : undefined;
    if (!args.cacheable || !sourceEntry) cacheable = false;
    if (cacheable && sourceEntry) {
      const forced: Digest[] = [];
      for (const f of args.forcedIncludes) {
        const d = await fileDigest(view, deps, a.cwd, f);
        if (!d) cacheable = false;
        else forced.push(d);
      }
      searchDirs = [posix.dirname(args.sources[0]!), ...args.iquoteDirs, ...args.includeDirs, ...args.isystemDirs, ...args.idirafterDirs]
        .map((d) => toTreePath(view.projectRoot, a.cwd, d))
        .filter((d): d is string => d !== undefined);
      level1 = compileLevel1Key({
        toolchain: a.toolchain,
        argv: argvForKey,
        workingDir: keyWorkingDir(args, a.cwd, cwdAbs),
        env,
        sourceDigest: sourceEntry.digest,
        forcedIncludeDigests: forced,
      });
    }
  } else {
    // Archives and links read exactly what their argv names (plus -l libraries).
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
    inputRoot = tree.root;
    inputBlobs = [...files.values()].map((f) => f.digest);
    if (cacheable) {
      key = linkKey({ toolchain: a.toolchain, argv: argvForKey, workingDir: a.cwd, env, inputs: keyInputs });
    }
  }

  // Named, not stored: a lease carries its Command inline, so the store never needs the blob.
  const commandDigest = digestOfMessage(Command, command);
  const action: Action = {
    commandDigest,
    inputRootDigest: inputRoot,
    timeout: undefined,
    doNotCache: !cacheable,
    salt: Buffer.alloc(0),
    platform: command.platform,
  };
  const prepared: Prepared = { command, action, inputRoot, level1, searchDirs, source, key, inputBlobs };
  if (cacheable) prepared.cached = await lookup(prepared, view, deps);
  return prepared;
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

async function lookup(p: Prepared, view: BuildView, deps: PrepareDeps): Promise<ActionResult | undefined> {
  if (p.key) return lookupValid(deps.cache, deps.store, p.key);
  if (!p.level1) return undefined;
  return lookupCompile(
    deps.cache,
    deps.store,
    p.level1,
    (h) => (posix.isAbsolute(h) ? deps.externalDigest(h) : lookupFile(view, h)?.digest),
    (headers) => probes(p, view, headers),
  );
}

function probes(p: Prepared, view: BuildView, headers: string[]): string[] {
  return shadowProbes(
    headers.filter((h) => !posix.isAbsolute(h)),
    p.searchDirs ?? [],
    (path) => view.context.file(path) !== undefined,
  );
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
  if (!p.level1 || depfile === undefined) return;
  const source = p.source;
  const headers: { path: string; digest: Digest }[] = [];
  const seen = new Set<string>();
  for (const dep of parseDepfile(depfile).deps) {
    const tp = toTreePath(view.projectRoot, a.cwd, dep);
    if (tp === source) continue;
    let path: string;
    let digest: Digest | undefined;
    if (tp !== undefined) {
      path = tp;
      // The context the compile ran against, not the tree now: the manifest must say what was read.
      digest = view.context.file(tp)?.digest;
    } else {
      path = posix.resolve(view.projectRoot, a.cwd, dep);
      if (SYSTEM_PREFIXES.some((s) => path.startsWith(s))) continue;
      digest = await deps.externalDigest(path);
    }
    if (!digest) return; // a header we cannot name by content: never cache what we cannot key
    if (seen.has(path)) continue;
    seen.add(path);
    headers.push({ path, digest });
  }
  headers.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  deps.cache.putResult(compileLevel2Key(p.level1, headers, probes(p, view, headers.map((h) => h.path))), result);
  deps.cache.addManifest(p.level1, CompileManifest.fromPartial({ headers }));
}

async function fileDigest(view: BuildView, deps: PrepareDeps, cwd: string, p: string): Promise<Digest | undefined> {
  const tp = toTreePath(view.projectRoot, cwd, p);
  if (tp !== undefined) return lookupFile(view, tp)?.digest;
  return deps.externalDigest(posix.resolve(view.projectRoot, cwd, p));
}

async function putDirectories(store: BlobStore, directories: Map<string, Directory>): Promise<void> {
  // The map is keyed by digestKey already: name each blob by its key, encode only the missing ones.
  const digests = [...directories.keys()].map(parseDigestKey);
  for (const d of await store.findMissing(digests)) await store.put(Directory.encode(directories.get(digestKey(d))!).finish(), d);
}
