// What `orion cc` sends to a farm, decided without the network: the project root a call belongs to, whether its compile can run
// in a node's sandbox, the one-compile graph action it becomes, and the hashing of its source context at most once per call.
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, posix, relative, resolve } from "node:path";
import { type CompileArgs, compileNeverReads, defaultDepfilePath, withExplicitOutput } from "../compile/index.js";
import { argvRefusal, envRefusal } from "../exec/argv-policy.js";

/**
 * The project root of a call: ORION_PROJECT_ROOT when set (relative to the call's cwd), else the nearest ancestor of
 * the cwd (the cwd included) holding `.git`, else the cwd itself. The source context is this whole tree.
 */
export function findProjectRoot(cwd: string, env: Record<string, string | undefined>): string {
  const explicit = env.ORION_PROJECT_ROOT;
  if (explicit) return resolve(cwd, explicit);
  for (let d = cwd; ; d = dirname(d)) {
    if (existsSync(join(d, ".git"))) return d;
    if (dirname(d) === d) return cwd;
  }
}

/** One compile as the farm runs it: its action's fields, and where its outputs go back to. */
export interface FarmCompile {
  /** Absolute project root (the context's top). */
  root: string;
  /** The call's cwd relative to the root, "" for the root itself. */
  cwd: string;
  /** The driver's absolute path, then the call's arguments — plus `-MD` when the user asked for no depfile (Orion learns the headers from it). */
  argv: string[];
  /** The source's tree path. */
  source: string;
  /** The object, relative to the call's cwd (normalized, as the node names its outputs). */
  object: string;
  /** The depfile gcc writes, relative to the call's cwd. */
  depfile: string;
  /** The user asked for the depfile: it is written into the tree; otherwise it is only read. */
  depfileWanted: boolean;
  /** Tree paths of the outputs: the object, then the depfile. */
  outputs: string[];
  label: string;
}

/** A path relative to `base` that stays below it, normalized; undefined when it leaves it. */
function below(base: string, p: string): string | undefined {
  const rel = relative(base, resolve(base, p));
  if (rel === "" || rel === ".." || rel.startsWith("../") || isAbsolute(rel)) return undefined;
  return rel;
}

/**
 * The farm form of a cacheable compile, or why it runs here instead: a node runs a plain `-c … -o` compile in a sandbox
 * standing for the call's cwd, so the cwd and the source must lie inside the project root and the outputs below the cwd.
 * A `-c` without `-o` goes as the same call with its implied object spelled out (`-o x.o`), as gcc would write it.
 */
export function planFarmCompile(
  exe: string,
  argv: readonly string[],
  cwd: string,
  args: CompileArgs,
  root: string,
  env: readonly [string, string][] = [],
): FarmCompile | string {
  const call = args.call;
  const m = call.modes;
  if (call.kind !== "compile" || !m.compile || m.assemble || m.syntaxOnly || call.output === undefined) return "not a plain -c … -o compile";
  if (args.output === undefined || args.sources.length !== 1) return "not one source to one object";
  // The node's plan understands -MD/-MMD with or without -MF; depfile options it cannot see (-Wp,-MD) run here.
  if ([...call.flags].some((a) => a.startsWith("-Wp,"))) return "-Wp, options";
  if (!args.depfile && call.depfileNamed !== undefined) return "-MF without -MD";
  const relCwd = relative(root, cwd) === "" ? "" : below(root, cwd);
  if (relCwd === undefined) return `the cwd ${cwd} is outside the project root ${root}`;
  const source = below(root, resolve(cwd, args.sources[0]!));
  if (source === undefined) return `the source ${args.sources[0]} is outside the project root ${root}`;
  const object = below(cwd, args.output);
  if (object === undefined) return `the output ${args.output} is not below the cwd`;
  const depfile = below(cwd, args.depfile?.path ?? defaultDepfilePath(args.output));
  if (depfile === undefined) return "the depfile is not below the cwd";
  // What a node would refuse (argv-policy.ts) is the user's own business on the user's own machine: compiled here, as gcc would.
  const ctx = { projectRoot: root, cwd };
  const refusal = argvRefusal([exe, ...argv.slice(1)], ctx, "driver") ?? envRefusal(env.map(([name, value]) => ({ name, value })), ctx);
  if (refusal) return `a node would refuse ${refusal.option}: ${refusal.message}`;
  // A missing output folder is the compiler's error to report, in its own words.
  if (!existsSync(dirname(resolve(cwd, object)))) return "the output's folder does not exist";
  const tree = (p: string) => posix.normalize(relCwd ? `${relCwd}/${p}` : p);
  return {
    root,
    cwd: relCwd,
    argv: [exe, ...withExplicitOutput(argv, call).slice(1), ...(args.depfile ? [] : ["-MD"])],
    source,
    object,
    depfile,
    depfileWanted: args.depfile !== undefined,
    outputs: [tree(object), tree(depfile)],
    label: `CC ${tree(object)}`,
  };
}

/**
 * Files never part of a context: objects and archives (a compile never reads them, and leaving them out keeps the context
 * — and each node's materialized copy of it — the same while a build writes them) and Orion's own temporary outputs.
 */
export function isContextNoise(relPath: string): boolean {
  const name = relPath.slice(relPath.lastIndexOf("/") + 1);
  // The blob stores write an output beside its place first: `.NAME.orion-UUID` (over gRPC), `NAME.orion-tmp-…` (the local CAS).
  return compileNeverReads(name) || name.includes(".orion-tmp-") || (name.startsWith(".") && name.includes(".orion-"));
}

/**
 * Runs `work` on behalf of callers that each need a result computed no earlier than their own call (a context hashed after
 * the call was made): a caller arriving while a run is in flight waits for the next one, which every such caller shares.
 * So at most one run is in flight and one waits, however many calls arrive.
 */
export class FreshRuns<T> {
  private running?: Promise<T>;
  private queued?: Promise<T>;

  constructor(private readonly work: () => Promise<T>) {}

  run(): Promise<T> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const queued = this.running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.queued = undefined;
      return this.start();
    });
    this.queued = queued;
    return queued;
  }

  private start(): Promise<T> {
    const p = Promise.resolve().then(() => this.work());
    this.running = p;
    const clear = () => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}
