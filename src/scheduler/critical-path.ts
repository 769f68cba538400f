// Critical-path priorities: each task's longest remaining path to the end of the graph (its own estimate included).
import { OrionError, ExitCode } from "../core/errors.js";

export interface PathNode {
  id: string;
  deps: readonly string[];
  estimateMs: number;
}

/** Returns id → priority; throws on a cycle or an unknown dependency. */
export function criticalPathPriorities(nodes: readonly PathNode[]): Map<string, number> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const dependents = new Map<string, string[]>();
  const indegree = new Map<string, number>();
  for (const n of nodes) indegree.set(n.id, 0);
  for (const n of nodes) {
    for (const d of n.deps) {
      if (!byId.has(d)) throw new OrionError(`action ${n.id} depends on unknown action ${d}`, { exitCode: ExitCode.USAGE });
      dependents.set(d, [...(dependents.get(d) ?? []), n.id]);
      indegree.set(n.id, indegree.get(n.id)! + 1);
    }
  }
  // Kahn's order, then longest path computed backwards from the sinks.
  const order: string[] = [];
  const queue = nodes.filter((n) => n.deps.length === 0).map((n) => n.id);
  const remaining = new Map(indegree);
  while (queue.length) {
    const id = queue.pop()!;
    order.push(id);
    for (const c of dependents.get(id) ?? []) {
      const left = remaining.get(c)! - 1;
      remaining.set(c, left);
      if (left === 0) queue.push(c);
    }
  }
  if (order.length !== nodes.length) {
    throw new OrionError("the build graph has a cycle", { exitCode: ExitCode.USAGE });
  }
  const prio = new Map<string, number>();
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i]!;
    let longest = 0;
    for (const c of dependents.get(id) ?? []) longest = Math.max(longest, prio.get(c)!);
    prio.set(id, longest + byId.get(id)!.estimateMs);
  }
  return prio;
}
