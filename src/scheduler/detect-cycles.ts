// Graph checks a build must pass before the scheduler takes it: unique ids, known dependencies, no cycle (pure functions, no I/O).

export interface GraphNode {
  id: string;
  deps: readonly string[];
}

/** What is wrong with a graph's shape, found in one pass; undefined when the scheduler can run it to the end. */
export type GraphProblem =
  | { kind: "duplicate"; index: number; id: string }
  | { kind: "unknown-dep"; index: number; id: string; dep: string }
  | { kind: "cycle"; path: string[] };

/**
 * The first problem that would keep a build from ever finishing: a repeated id (two tasks under one name,
 * one never completes), a dependency on no task, or a cycle (each task on it waits for the next forever).
 * A cycle is returned as the ids along it, first id repeated at the end (`a → b → a`).
 */
export function graphProblem(nodes: readonly GraphNode[]): GraphProblem | undefined {
  const byId = new Map<string, GraphNode>();
  for (const [index, n] of nodes.entries()) {
    if (byId.has(n.id)) return { kind: "duplicate", index, id: n.id };
    byId.set(n.id, n);
  }
  for (const [index, n] of nodes.entries()) {
    for (const d of n.deps) if (!byId.has(d)) return { kind: "unknown-dep", index, id: n.id, dep: d };
  }
  const path = findCycle(nodes);
  return path ? { kind: "cycle", path } : undefined;
}

/** One cycle of the dependency graph as the ids along it (first repeated last), or undefined when it is acyclic. Dependencies must be known ids. */
export function findCycle(nodes: readonly GraphNode[]): string[] | undefined {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  // 0 unvisited, 1 on the current path, 2 finished: an edge into a node on the path closes a cycle.
  const state = new Map<string, 0 | 1 | 2>();
  // Iterative depth-first search: a 10,000-deep chain must not overflow the stack.
  for (const start of nodes) {
    if (state.get(start.id)) continue;
    const stack: { id: string; next: number }[] = [{ id: start.id, next: 0 }];
    state.set(start.id, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const deps = byId.get(top.id)!.deps;
      if (top.next >= deps.length) {
        state.set(top.id, 2);
        stack.pop();
        continue;
      }
      const d = deps[top.next++]!;
      const s = state.get(d) ?? 0;
      if (s === 1) {
        const from = stack.findIndex((f) => f.id === d);
        return [...stack.slice(from).map((f) => f.id), d];
      }
      if (s === 0) {
        state.set(d, 1);
        stack.push({ id: d, next: 0 });
      }
    }
  }
  return undefined;
}
