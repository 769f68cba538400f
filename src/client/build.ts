// `orion build`: extract the graph, hash and upload the source context, submit the graph to a
// head (embedded or remote — the same BuildsApi), run the host steps it hands back in the real
// tree, and write results into the tree as they arrive.
import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import { type Logger, diskFullLine, DiskFullError, errorMessage, ExitCode, freeBytesAt, isDiskFull, OrionError } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import { keyEnv } from "../cache/index.js";
import { type HashedTree, hashTree, type StatCache, uploadTree } from "../merkle/index.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type { BuildsApi, ContextUpload } from "../head/api.js";
import type { BuildEvent, Summary } from "../scheduler/index.js";
import type { BuildGraph } from "../../dag-extract/index.js";
import { OutputWriter } from "./outputs.js";
import { reuploadBlobs } from "./reupload.js";
import type { ProgramDigests } from "../cache/index.js";
import { findProgram } from "../core/programs.js";
import type { StepCache } from "../steps/step-cache.js";

export interface ClientBuildOptions {
  /** What to build, as dag-extract found it. */
  graph: BuildGraph;
  noCache: boolean;
  retries: number;
  head: BuildsApi;
  /** Where the head reads blobs from (embedded: its own store). */
  store: BlobStore;
  statCache: StatCache;
  programs: ProgramDigests;
  logger: Logger;
  onEvent(event: BuildEvent): void;
  /** Diagnostics and host-step output: never stdout, which belongs to the reporter. */
  diagnostics(chunk: string | Uint8Array): void;
  signal?: AbortSignal;
  /** Pass the context's file map in-process instead of making the head read it back (embedded only). */
  inProcess?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The whole-step cache for host steps (absent: they run every time). */
  stepCache?: StepCache;
  /** Tools a sub-make run as a host step may start at once (default 1). */
  hostJobs?: number;
  /** The client cache's folder (ORION_CACHE_DIR), named when it fills up. */
  cacheDir?: string;
}

export interface ClientBuildOutcome {
  summary: Summary;
  exitCode: number;
  graph: BuildGraph;
}

export async function runBuild(o: ClientBuildOptions): Promise<ClientBuildOutcome> {
  const env = o.env ?? process.env;
  const graph = o.graph;
  const root = graph.root;
  const log = o.logger.child({ module: "client" });

  const known = new Set<string>();
  // Hashing the tree and naming the toolchains are independent: do them together.
  const started = performance.now();
  let hashed: Awaited<ReturnType<typeof hashContext>>;
  let actions: GraphAction[];
  try {
    [hashed, actions] = await Promise.all([hashContext(root, o, known), toGraphActions(graph, o.programs, env)]);
  } catch (err) {
    // The source context did not fit in the store: nothing was submitted, but the build still ends with its line and summary.
    if (!isDiskFull(err)) throw err;
    o.diagnostics(`orion: ${diskFullLine(err, "the client cache", o.cacheDir ?? root)}\n`);
    return { summary: reportUnsubmitted(graph, o.onEvent, performance.now() - started), exitCode: ExitCode.INFRASTRUCTURE, graph };
  }
  const context = hashed.upload;
  /** The tree as last hashed, and how many actions' outputs the writer had queued then. */
  let tree = hashed.tree;
  let treeAtWrites = 0;
  log.debug({ ms: Math.round(performance.now() - started), files: context.files?.size }, "context hashed and uploaded, toolchains named");
  const { buildId } = await o.head.submitBuild(
    { contextRoot: context.root, actions, noCache: o.noCache, retries: o.retries, jobs: 0, token: "", projectRoot: root },
    context,
  );
  log.debug({ buildId, actions: actions.length }, "build submitted");

  const writer = new OutputWriter(o.store, o.statCache, root);
  const byId = new Map(actions.map((a) => [a.id, a]));
  let summary: Summary | undefined;
  let interrupted = false;
  /** The one line said about a full disk, once one was hit: the build ends at once with exit 3. */
  let diskFull: string | undefined;
  let hostFailure = false;
  /** Actions the infrastructure failed (no node for the toolchain, retries exhausted): exit 3, not 1. */
  let infraFailure = false;
  const infraReported = new Set<string>();
  const hostAbort = new AbortController();
  const onAbort = () => {
    interrupted = true;
    hostAbort.abort();
    void o.head.cancelBuild(buildId);
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const onDiskFull = (err: unknown) => {
    if (diskFull) return;
    // Embedded, what failed without naming its store wrote under the client cache (the node's sandboxes live there too).
    diskFull = diskFullLine(err, o.inProcess ? "the client cache" : "a write", o.inProcess && o.cacheDir ? o.cacheDir : root);
    o.diagnostics(`orion: ${diskFull}\n`);
    // Nothing more can be stored: end the build now (its summary follows) rather than retry into the same full disk.
    hostAbort.abort();
    // Not from inside the event being handled: the embedded head would deliver the summary before that event.
    if (!summary) setImmediate(() => void o.head.cancelBuild(buildId).catch(() => undefined));
  };
  /** The diagnostics of failed actions being fetched and printed: the summary waits for them. */
  const diagnosed: Promise<unknown>[] = [];
  const finished = new Promise<Summary>((resolve, reject) => {
    const detach = o.head.watchBuild(buildId, 0, (event) => {
      if (event.type === "missing-blobs") {
        // The head's store lost these (rot): send them again; the action waiting for them then re-runs.
        void reuploadBlobs(o.store, root, tree, event.digests, log, writer);
        return;
      }
      // Embedded, every store is this client's own: its full disk ends the build (on a farm, another node may have room).
      const full = o.inProcess && event.type === "action" && (event.state === "failed" || event.state === "retry") && isDiskFull(event.error ?? "");
      if (full) onDiskFull(event.error);
      if (event.type === "action" && event.state === "failed" && event.infra && !full) {
        infraFailure = true;
        // One line per distinct cause: a toolchain no node has fails every compile the same way.
        const why = event.error ?? "infrastructure failure";
        if (!infraReported.has(why)) o.diagnostics(`orion: ${event.label}: ${why}\n`);
        infraReported.add(why);
      }
      if (event.type === "action" && (event.state === "finished" || event.state === "cached" || event.state === "failed")) {
        const a = byId.get(event.id)!;
        const result = o.head.getResult(buildId, event.id);
        // Registered now, in event order, so a dependent's files always wait for its dependencies'.
        if (event.state !== "failed") writer.write(a.id, a.deps, a.cwd, result);
        const shown = result.then(async (r) => {
          if (!r) return;
          // The compiler's own words (warnings, errors), as make would have shown them; long output comes by digest only.
          for (const [raw, digest] of [[r.stdoutRaw, r.stdoutDigest], [r.stderrRaw, r.stderrDigest]] as const) {
            const text = raw.length || !digest?.sizeBytes ? raw : await o.store.get(digest).catch(() => undefined);
            if (text?.length) o.diagnostics(text);
          }
          // Embedded, a tool that could not write its output into its sandbox (under the client cache) on a full
          // disk is that disk's failure, not the project's: exit 3 and the folder, not exit 1.
          if (o.inProcess && o.cacheDir && event.state === "failed" && toolSawFullDisk(r, o.cacheDir)) {
            const work = posix.join(o.cacheDir, "work");
            onDiskFull(new DiskFullError("the sandboxes", work, undefined, freeBytesAt(work)));
          }
        });
        // A failure's diagnostics come before the summary (a farm's results arrive after their events).
        if (event.state === "failed") diagnosed.push(shown.catch(() => undefined));
        else void shown.catch(() => undefined);
      }
      if (event.type === "summary") {
        summary = event;
        // Every action's event came before this one: nothing a host step waits for can still be queued.
        writer.close(new OrionError("the build ended before every action a host step depends on was reported", { exitCode: ExitCode.INFRASTRUCTURE }));
        const last = event;
        void Promise.all(diagnosed).then(() => {
          o.onEvent(last);
          resolve(last);
        });
        queueMicrotask(() => detach());
        return;
      }
      o.onEvent(event);
    }, (err) => {
      writer.close(err);
      hostAbort.abort();
      reject(err);
    });
  });
  // The host-step loop ends on the summary; a watch that failed must end it too.
  let watchFailed = false;
  finished.catch(() => (watchFailed = true));

  let runner: import("../steps/host-runner.js").HostStepRunner | undefined;
  const printsOnly = new Set(graph.commands.filter((c) => c.printsOnly).map((c) => c.id));
  const hostLoop = (async () => {
    while (!summary && !watchFailed) {
      const leases = await o.head.leaseHostSteps(buildId, 1, 250);
      for (const lease of leases) {
        let ok = false;
        let upload: ContextUpload | undefined;
        let restored = false;
        /** Where this step's time goes on the client (debug log): waiting for outputs, hashing, the step, the re-hash and upload. */
        const t = { start: performance.now(), flushed: 0, hashed: 0, ran: 0, uploaded: 0 };
        try {
          const quiet = printsOnly.has(lease.actionId);
          if (!quiet) {
            // The lease and the events travel apart: the lease may come before the events of the actions
            // ordered before this step. Wait until each of those has its outputs written, not just reported.
            await writer.whenWritten(orderedBefore(lease.actionId, byId));
            await writer.flush();
          }
          t.flushed = performance.now();
          // What the writer had queued (and, after the flush, written) before this hash: later writes are newer than it.
          const queuedNow = writer.queued;
          if (!quiet && queuedNow !== treeAtWrites) {
            // Outputs written since the last hash: the step must be judged against the tree as it is.
            tree = (await hashContext(root, o, known, false)).tree;
            treeAtWrites = queuedNow;
          }
          t.hashed = performance.now();
          if (!runner) {
            const { HostStepRunner } = await import("../steps/host-runner.js"); // host steps are rare: load it when one runs
            runner = new HostStepRunner({
              store: o.store,
              statCache: o.statCache,
              cache: o.noCache ? undefined : o.stepCache,
              env,
              jobs: o.hostJobs ?? 1,
              logger: log,
              diagnostics: o.diagnostics,
              signal: hostAbort.signal,
            });
          }
          const r = await runner.run(
            { argv: lease.argv, cwd: posix.join(root, lease.cwd), printsOnly: quiet },
            { root, files: tree.files, symlinks: tree.symlinks, directories: [...tree.dirDigests.keys()] },
          );
          ok = r.ok;
          restored = r.restored;
          t.ran = performance.now();
          if (!ok) hostFailure = true;
          if (!ok && !r.canceled) o.diagnostics(`orion: host step failed (exit ${r.exitCode ?? r.signal}): ${byId.get(lease.actionId)?.shell ?? lease.argv.join(" ")}\n`);
          if (!quiet) {
            // The step may have written anything in the tree: the next actions see it as it is now.
            const after = await hashContext(root, o, known);
            upload = after.upload;
            tree = after.tree;
            treeAtWrites = queuedNow;
            t.uploaded = performance.now();
          }
        } catch (err) {
          hostFailure = true;
          if (isDiskFull(err)) onDiskFull(err);
          else o.diagnostics(`orion: host step could not run: ${errorMessage(err)}\n`);
        }
        const reportStart = performance.now();
        await o.head.reportHostStep(buildId, lease.leaseId, ok, upload, restored);
        const ms = (a: number, b: number) => (a && b ? Math.round(b - a) : undefined);
        log.debug(
          {
            action: lease.actionId,
            restored,
            flushMs: ms(t.start, t.flushed),
            hashMs: ms(t.flushed, t.hashed),
            runMs: ms(t.hashed, t.ran),
            uploadMs: ms(t.ran, t.uploaded),
            reportMs: Math.round(performance.now() - reportStart),
            root: upload?.root.hash.slice(0, 12),
          },
          "host step done",
        );
      }
    }
  })();

  // A host-step call that fails (the head went away) is rethrown below, not an unhandled rejection now.
  hostLoop.catch(() => undefined);
  let final: Summary;
  // The head's timers (retry backoff, waits) are unref'd so they never hold a daemon open; an embedded build
  // waiting on one of them alone must not let the process exit under it.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    final = await finished;
  } catch (err) {
    await hostLoop.catch(() => undefined);
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
  log.debug({ ms: Math.round(performance.now() - started) }, "build finished");
  await hostLoop;
  try {
    await writer.flush();
  } catch (err) {
    // The tree's disk is full: the summary is out already; the line and exit 3 follow.
    if (!isDiskFull(err)) throw err;
    onDiskFull(err);
  }
  log.debug({ ms: Math.round(performance.now() - started) }, "outputs written");
  o.statCache.flush();
  o.signal?.removeEventListener("abort", onAbort);
  const exitCode = interrupted
    ? ExitCode.INTERRUPTED
    : infraFailure || diskFull
      ? ExitCode.INFRASTRUCTURE
      : final.failed > 0 || final.skipped > 0 || hostFailure
        ? ExitCode.BUILD_FAILED
        : ExitCode.OK;
  return { summary: final, exitCode, graph };
}

/** The tool's own words say it found no space, and the client cache's file system has little left (a sandbox's files are gone by now). */
function toolSawFullDisk(r: ActionResult, cacheDir: string): boolean {
  const words = /No space left on device|Disk quota exceeded/;
  if (!words.test(r.stderrRaw.toString()) && !words.test(r.stdoutRaw.toString())) return false;
  return (freeBytesAt(cacheDir) ?? Infinity) < 16 * 1024 * 1024;
}

/** The events of a build that ended before it was submitted (its stores or its context did not fit): every action skipped. */
export function reportUnsubmitted(graph: BuildGraph, onEvent: (e: BuildEvent) => void, ms: number): Summary {
  const buildId = randomUUID();
  const actions = graph.commands.filter((c) => !c.host).length;
  const hostSteps = graph.commands.length - actions;
  onEvent({ type: "build-start", actions, hostSteps, seq: 1, buildId });
  const summary: Summary = { actions, executed: 0, cacheHits: 0, failed: 0, skipped: actions, hostSteps, hostStepsCached: 0, attempts: 0, clones: 0, wallMs: Math.round(ms), nodes: {} };
  onEvent({ type: "summary", ...summary, seq: 2, buildId });
  return summary;
}

/** Every action ordered before `id` in the graph (its dependencies, transitively) that writes outputs into the tree: all but host steps. */
export function orderedBefore(id: string, byId: ReadonlyMap<string, Pick<GraphAction, "deps" | "host">>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const stack = [...(byId.get(id)?.deps ?? [])];
  while (stack.length) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    const a = byId.get(d);
    if (!a) continue;
    if (!a.host) out.push(d);
    // Through host steps too: what they waited for is written already, so those waits cost a map look-up.
    stack.push(...a.deps);
  }
  return out;
}

/** `known`: the blobs this build saw the head's store hold, so a re-hash after a host step uploads only what changed. */
async function hashContext(root: string, o: ClientBuildOptions, known: Set<string>, upload = true): Promise<{ upload: ContextUpload; tree: HashedTree }> {
  let tree: HashedTree;
  try {
    tree = await hashTree(root, { statCache: o.statCache });
  } catch (err) {
    if (err instanceof OrionError || isDiskFull(err)) throw err;
    throw new OrionError(`cannot hash ${root}: ${errorMessage(err)}`, { exitCode: ExitCode.USAGE, cause: err });
  }
  // Over the wire, more blobs in flight means fuller batches (one call each), not more calls.
  if (upload) await uploadTree(o.store, tree, root, { concurrency: o.inProcess ? 16 : 64, known });
  return { upload: { root: tree.root, files: o.inProcess ? tree.files : undefined }, tree };
}

async function toGraphActions(graph: BuildGraph, programs: ProgramDigests, env: NodeJS.ProcessEnv): Promise<GraphAction[]> {
  const keyed = keyEnv(env).map(([name, value]) => ({ name, value }));
  // A build names a handful of programs hundreds of times: resolve each (name, directory) once.
  const found = new Map<string, string | undefined>();
  const find = (program: string, cwd: string) => {
    const k = program.includes("/") ? `${cwd}\0${program}` : program;
    if (!found.has(k)) found.set(k, findProgram(program, cwd, env));
    return found.get(k);
  };
  return Promise.all(
    graph.commands.map(async (c): Promise<GraphAction> => {
      let host = c.host;
      let argv = c.argv;
      let toolchain = "";
      if (!host) {
        const abs = find(c.argv[0]!, posix.join(graph.root, c.cwd));
        if (abs) {
          argv = [abs, ...c.argv.slice(1)];
          toolchain = await programs.digest(abs);
        } else {
          // Not found here: run it as make would, so the user sees the shell's own error.
          host = true;
          argv = ["/bin/sh", "-c", c.line];
        }
      }
      return {
        id: c.id,
        kind: c.kind,
        label: c.label,
        arguments: argv,
        cwd: c.cwd,
        inputs: c.inputs,
        outputs: c.outputs,
        deps: c.deps,
        host,
        toolchain,
        environmentVariables: host ? [] : keyed,
        shell: c.line,
      };
    }),
  );
}
