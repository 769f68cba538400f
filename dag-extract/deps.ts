// Derives each command's dependencies from the files it reads and writes and from host-step barriers, given the build tool's serial order.

import type { GraphCommand } from "./graph.js";

/**
 * Fills `deps` of every command, in place. `commands` must be in an order the build
 * tool could have run serially (make -n's order, a compile database's order).
 *
 * - A command waits for the latest earlier writer of each file it reads (true
 *   dependency), of each file it writes (two writers keep their order), and for every
 *   earlier reader of a file it overwrites since that file's last write.
 * - A host step is a barrier: Orion cannot see what it reads or writes, so it waits
 *   for everything before it and everything after it waits for it. Depending on the
 *   previous barrier and on the commands since then covers all earlier ones transitively.
 * - A step that only prints waits like a barrier but holds nothing up.
 */
export function linkDependencies(commands: GraphCommand[]): void {
  let lastHost: string | undefined;
  let sinceHost: string[] = [];
  let lastWriter = new Map<string, string>();
  let readers = new Map<string, string[]>();

  for (const cmd of commands) {
    const deps = new Set<string>();
    if (lastHost !== undefined) deps.add(lastHost);
    if (cmd.printsOnly) {
      // In its place among the steps around it, but holding nothing up: it touches no file.
      for (const id of sinceHost) deps.add(id);
    } else if (cmd.host) {
      for (const id of sinceHost) deps.add(id);
      lastHost = cmd.id;
      sinceHost = [];
      // Everything earlier is now reached through this barrier.
      lastWriter = new Map();
      readers = new Map();
    } else {
      for (const f of cmd.inputs) addIfSet(deps, lastWriter.get(f));
      for (const f of cmd.outputs) {
        addIfSet(deps, lastWriter.get(f));
        for (const r of readers.get(f) ?? []) deps.add(r);
      }
      for (const f of cmd.inputs) {
        const list = readers.get(f);
        if (list) list.push(cmd.id);
        else readers.set(f, [cmd.id]);
      }
      for (const f of cmd.outputs) {
        lastWriter.set(f, cmd.id);
        readers.delete(f);
      }
      sinceHost.push(cmd.id);
    }
    deps.delete(cmd.id);
    cmd.deps = [...deps].sort(byIdOrder);
  }
}

function addIfSet(set: Set<string>, id: string | undefined): void {
  if (id !== undefined) set.add(id);
}

/** Ids are "a<N>"; ordering them numerically keeps deps in execution order. */
function byIdOrder(a: string, b: string): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}

/** The id of the n-th command (0-based) of an extraction. */
export function commandId(index: number): string {
  return `a${index + 1}`;
}
