// A build with nothing to do (make lists no command): the same scheduler core reports it, with nothing started.
import { randomUUID } from "node:crypto";
import { systemClock } from "../core/clock.js";
import { Scheduler } from "../scheduler/scheduler.js";
import type { BuildEvent } from "../scheduler/events.js";

export function reportEmptyBuild(onEvent: (e: BuildEvent) => void): void {
  const scheduler = new Scheduler({ clock: systemClock, ids: randomUUID, onReady: () => {} });
  void scheduler.addBuild(randomUUID(), [], { retries: 0, failFast: true, onEvent });
}
