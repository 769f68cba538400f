// `orion build`: extract the graph, hash and upload the source context, submit the graph to a
// head (embedded or remote — the same BuildsApi), run the host steps it hands back in the real
// tree, and write results into the tree as they arrive.
import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import { diskFullLine, ExitCode, isDiskFull } from "../core/index.js";
import { keyEnv } from "../cache/index.js";
import type { GraphAction } from "../gen/orion/v1/scheduler.js";
import type { BuildEvent, Summary } from "../scheduler/index.js";
import type { BuildGraph } from "../../dag-extract/index.js";
import { OutputWriter } from "./outputs.js";
import type { ProgramDigests } from "../cache/index.js";
import { findProgram } from "../core/programs.js";
import type { ClientBuildOptions, ClientBuildOutcome } from "./build-options.js";
import { BuildRun } from "./build-run.js";
import { followEvents } from "./build-events.js";
import { hashContext } from "./hash-context.js";
import { runHostSteps } from "./host-step-loop.js";

export type { ClientBuildOptions, ClientBuildOutcome } from "./build-options.js";

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
  log.debug({ ms: Math.round(performance.now() - started), files: context.files?.size }, "context hashed and uploaded, toolchains named");
  const { buildId } = await o.head.submitBuild(
    { contextRoot: context.root, actions, noCache: o.noCache, retries: o.retries, jobs: 0, token: "", projectRoot: root, noNodeTimeoutMs: o.noNodeTimeoutMs ?? 0 },
    context,
  );
  log.debug({ buildId, actions: actions.length }, "build submitted");

  const run = new BuildRun(o, buildId, hashed.tree);
  const writer = new OutputWriter(o.store, o.statCache, root);
  const byId = new Map(actions.map((a) => [a.id, a]));
  const onAbort = () => run.interrupt();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const finished = followEvents(o, run, writer, byId, log);
  // The host-step loop ends on the summary; a watch that failed must end it too.
  finished.catch(() => (run.watchFailed = true));
  const hostLoop = runHostSteps({ o, run, writer, byId, known, env, log });
  // A host-step call that fails (the head went away) is rethrown below, not an unhandled rejection now.
  hostLoop.catch(() => undefined);

  const final = await untilFinished(finished, hostLoop);
  log.debug({ ms: Math.round(performance.now() - started) }, "build finished");
  await hostLoop;
  try {
    await writer.flush();
  } catch (err) {
    // The tree's disk is full: the summary is out already; the line and exit 3 follow.
    if (!isDiskFull(err)) throw err;
    run.onDiskFull(err);
  }
  log.debug({ ms: Math.round(performance.now() - started) }, "outputs written");
  o.statCache.flush();
  o.signal?.removeEventListener("abort", onAbort);
  return { summary: final, exitCode: run.exitCode(final), graph };
}

/** The build's summary; when the watch fails, its error once the host-step loop has stopped. */
async function untilFinished(finished: Promise<Summary>, hostLoop: Promise<void>): Promise<Summary> {
  // The head's timers (retry backoff, waits) are unref'd so they never hold a daemon open; an embedded build
  // waiting on one of them alone must not let the process exit under it.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    return await finished;
  } catch (err) {
    await hostLoop.catch(() => undefined);
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
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
