/** The minimal shape cycle detection needs from a step. */
export interface DependencyNode {
  readonly stepKey: string;
  readonly dependencies: readonly { readonly prerequisiteStepKey: string }[];
}

/**
 * Finds a dependency cycle among `steps` (keys assumed unique; prerequisites outside `steps`
 * are ignored), or returns `null` when the graph is acyclic.
 *
 * The cycle is returned in execution direction — each key is a prerequisite of the next — and
 * closed by repeating its first key, e.g. `["a", "b", "c", "a"]`. It starts at the earliest
 * declared step on the cycle, so the answer is deterministic. Iterative and O(steps + edges):
 * a topological sort (Kahn) removes every step that can run; each step left over still waits
 * on another left-over step, so walking those prerequisites backwards must revisit a step.
 */
export function findCycle(steps: readonly DependencyNode[]): string[] | null {
  const count = steps.length;
  const indexByKey = new Map<string, number>();
  for (let i = 0; i < count; i++) indexByKey.set(steps[i]!.stepKey, i);

  const prerequisites: number[][] = [];
  const dependents: number[][] = Array.from({ length: count }, () => []);
  const pending = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const inside: number[] = [];
    for (const dependency of steps[i]!.dependencies) {
      const p = indexByKey.get(dependency.prerequisiteStepKey);
      if (p === undefined) continue;
      inside.push(p);
      dependents[p]!.push(i);
    }
    prerequisites.push(inside);
    pending[i] = inside.length;
  }

  const ready: number[] = [];
  for (let i = 0; i < count; i++) if (pending[i] === 0) ready.push(i);
  let released = 0;
  while (ready.length > 0) {
    const step = ready.pop()!;
    released++;
    for (const dependent of dependents[step]!) {
      pending[dependent]! -= 1;
      if (pending[dependent] === 0) ready.push(dependent);
    }
  }
  if (released === count) return null;

  // Walk backwards from the first blocked step along blocked prerequisites until a step repeats.
  let current = pending.findIndex((n) => n > 0);
  const positionOnPath = new Int32Array(count).fill(-1);
  const path: number[] = [];
  while (positionOnPath[current] === -1) {
    positionOnPath[current] = path.length;
    path.push(current);
    current = prerequisites[current]!.find((p) => pending[p]! > 0)!;
  }
  const cycle = path.slice(positionOnPath[current]).reverse();
  let start = 0;
  for (let i = 1; i < cycle.length; i++) if (cycle[i]! < cycle[start]!) start = i;
  const ordered = [...cycle.slice(start), ...cycle.slice(0, start)];
  return [...ordered, ordered[0]!].map((i) => steps[i]!.stepKey);
}
