// A build with nothing to do (make lists no command, or only messages): the same scheduler core reports it,
// with nothing started; the messages are printed (on stderr, as host-step output is) in make's order.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { systemClock } from "../core/clock.js";
import { ExitCode } from "../core/errors.js";
import { Scheduler } from "../scheduler/scheduler.js";
import type { BuildEvent } from "../scheduler/events.js";
import type { BuildGraph } from "../../dag-extract/index.js";

export function reportEmptyBuild(graph: BuildGraph, onEvent: (e: BuildEvent) => void): number {
  for (const c of graph.commands) {
    const r = spawnSync(c.argv[0]!, c.argv.slice(1), { cwd: join(graph.root, c.cwd), stdio: ["ignore", 2, 2] });
    if (r.status !== 0) return ExitCode.BUILD_FAILED;
  }
  const scheduler = new Scheduler({ clock: systemClock, ids: randomUUID, onReady: () => {} });
  void scheduler.addBuild(randomUUID(), [], { retries: 0, failFast: true, onEvent });
  return ExitCode.OK;
}
