import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  JobType,
  RunledgerError,
  StepKey,
  validateWorkflowRunEnqueue,
  WorkflowDagBuilder,
  type WorkflowDependencyReleaseMode,
  WorkflowRunEnqueueBuilder,
  type WorkflowStepEnqueue,
  WorkflowStepEnqueueBuilder,
} from "../../src/core/index.ts";

interface Edge {
  prerequisite: number;
  mode: WorkflowDependencyReleaseMode;
}

interface RandomDag {
  keys: string[];
  jobTypes: string[];
  payloads: unknown[];
  /** Node i only depends on nodes < i, so index order is a topological order. */
  edges: Edge[][];
  /** The order in which `.job()` adds the nodes. */
  insertion: number[];
  /** The order in which nodes receive their dependencies. */
  wiring: number[];
}

const nonBlank = fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s.trim().length > 0);
const mode = fc.constantFrom<WorkflowDependencyReleaseMode>("ON_SUCCESS", "ON_TERMINAL");

function permutation(n: number): fc.Arbitrary<number[]> {
  return fc.array(fc.double({ noNaN: true }), { minLength: n, maxLength: n }).map((weights) =>
    weights
      .map((w, i) => [w, i] as const)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .map(([, i]) => i),
  );
}

const randomDag: fc.Arbitrary<RandomDag> = fc.integer({ min: 1, max: 25 }).chain((n) =>
  fc.record({
    keys: fc.uniqueArray(nonBlank, { minLength: n, maxLength: n }),
    jobTypes: fc.array(nonBlank, { minLength: n, maxLength: n }),
    payloads: fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: n, maxLength: n }),
    edges: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        i === 0
          ? fc.constant([] as Edge[])
          : fc
              .uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: Math.min(i, 4) })
              .chain((prerequisites) =>
                fc.tuple(...prerequisites.map((prerequisite) => mode.map((m): Edge => ({ prerequisite, mode: m })))),
              ),
      ),
    ),
    insertion: permutation(n),
    wiring: permutation(n),
  }),
);

function buildWithDagBuilder(
  dag: RandomDag,
  extra?: { from: number; to: number; mode: WorkflowDependencyReleaseMode },
) {
  const builder = WorkflowDagBuilder.tryNew("prop.workflow", { n: dag.keys.length });
  for (const i of dag.insertion) builder.job(dag.keys[i]!, dag.jobTypes[i]!, dag.payloads[i]);
  for (const i of dag.wiring) {
    for (const edge of dag.edges[i]!) {
      const key = dag.keys[i]!;
      const prerequisite = [dag.keys[edge.prerequisite]!];
      if (edge.mode === "ON_SUCCESS") builder.afterSuccess(key, prerequisite);
      else builder.afterTerminal(key, prerequisite);
    }
  }
  if (extra !== undefined) {
    const target = dag.keys[extra.to]!;
    const prerequisite = [dag.keys[extra.from]!];
    if (extra.mode === "ON_SUCCESS") builder.afterSuccess(target, prerequisite);
    else builder.afterTerminal(target, prerequisite);
  }
  return builder;
}

function expectedSteps(dag: RandomDag): WorkflowStepEnqueue[] {
  return dag.insertion.map((i) => ({
    stepKey: dag.keys[i]!,
    executionKind: "JOB",
    jobType: dag.jobTypes[i]!,
    organizationId: null,
    payload: dag.payloads[i],
    priority: null,
    maxAttempts: null,
    timeoutSeconds: null,
    stage: "queued",
    dependencies: dag.edges[i]!.map((edge) => ({
      prerequisiteStepKey: dag.keys[edge.prerequisite]!,
      releaseMode: edge.mode,
    })),
  }));
}

/** Indices reachable from `node` by following prerequisites (its ancestors). */
function ancestors(dag: RandomDag, node: number): number[] {
  const seen = new Set<number>();
  const stack = dag.edges[node]!.map((e) => e.prerequisite);
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const edge of dag.edges[next]!) stack.push(edge.prerequisite);
  }
  return [...seen].sort((a, b) => a - b);
}

describe("DAG properties", () => {
  it("any DAG built from a topological order builds and round-trips", () => {
    fc.assert(
      fc.property(randomDag, (dag) => {
        const built = buildWithDagBuilder(dag).build();
        expect(built.steps).toStrictEqual(expectedSteps(dag));
        expect(() => validateWorkflowRunEnqueue(built)).not.toThrow();

        // The explicit builders describe the same request.
        const explicit = WorkflowRunEnqueueBuilder.tryNew("prop.workflow", { n: dag.keys.length });
        for (const step of built.steps) {
          explicit.step(
            WorkflowStepEnqueueBuilder.job(
              StepKey.parse(step.stepKey),
              JobType.parse(step.jobType!),
              step.payload,
            ).setDependencies(step.dependencies),
          );
        }
        expect(explicit.build()).toStrictEqual(built);
      }),
    );
  });

  it("adding any back edge fails with workflow.invalid_dag_cycle and a real cycle", () => {
    fc.assert(
      fc.property(randomDag, fc.nat(), fc.nat(), mode, (dag, pickNode, pickAncestor, backMode) => {
        const candidates = dag.keys.map((_, i) => i).filter((i) => dag.edges[i]!.length > 0);
        fc.pre(candidates.length > 0);
        const descendant = candidates[pickNode % candidates.length]!;
        const upstream = ancestors(dag, descendant);
        const ancestor = upstream[pickAncestor % upstream.length]!;

        // The ancestor now also waits for its descendant: a cycle.
        const result = buildWithDagBuilder(dag, { from: descendant, to: ancestor, mode: backMode }).tryBuild();
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.error).toBeInstanceOf(RunledgerError);
        expect(result.error.code).toBe("workflow.invalid_dag_cycle");

        const cycle = result.error.details.cycle as string[];
        expect(cycle.length).toBeGreaterThanOrEqual(3);
        expect(cycle[0]).toBe(cycle.at(-1));
        expect(new Set(cycle.slice(0, -1)).size).toBe(cycle.length - 1);

        const index = new Map(dag.keys.map((k, i) => [k, i]));
        const dependsOn = (dependent: number, prerequisite: number) =>
          dag.edges[dependent]!.some((e) => e.prerequisite === prerequisite) ||
          (dependent === ancestor && prerequisite === descendant);
        for (let i = 0; i + 1 < cycle.length; i++) {
          const prerequisite = index.get(cycle[i]!);
          const dependent = index.get(cycle[i + 1]!);
          expect(prerequisite).toBeDefined();
          expect(dependent).toBeDefined();
          expect(dependsOn(dependent!, prerequisite!), `${cycle[i + 1]} should depend on ${cycle[i]}`).toBe(true);
        }
      }),
    );
  });
});
