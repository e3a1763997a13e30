import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  WorkflowStepEnqueueBuilder as Step,
  WorkflowRunEnqueueBuilder,
  type WorkflowStepStatus,
} from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  cancelJob,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  enqueueWorkflowRun,
  getWorkflowRunById,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobsSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, runSteps } from "../support/factories.ts";

/*
 * Random DAGs driven to their end by random changes (job successes in batches, failures, job
 * cancellations, gates closed every way, steps appended through an open gate, a run
 * cancellation), checked after every change against
 * the rule written out plainly below: a BLOCKED step whose prerequisites have all finished is
 * released when every ON_SUCCESS prerequisite succeeded, else canceled as unsatisfied, which counts
 * as a finish for its own dependents.
 */

const { db } = await useTestDatabase();
const JOB_TYPE = "propagation.step";

beforeAll(async () => {
  await defineJob(db, JOB_TYPE, { maxAttempts: 1 });
});

interface Node {
  external: boolean;
  dependencies: { on: number; onSuccess: boolean }[];
}

// Up to ten steps; each depends on a few earlier ones, most often on the one just before, so that
// chains (and cascades through them) are common.
const dagArbitrary = fc.integer({ min: 1, max: 10 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record({
        external: fc.integer({ min: 0, max: 4 }).map((k) => k === 0 && i > 0),
        dependencies: fc
          .tuple(
            fc.boolean(),
            fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { maxLength: i === 0 ? 0 : 2 }),
          )
          .map(([chained, others]) => [...new Set(i > 0 && chained ? [i - 1, ...others] : others)])
          .chain((ons) =>
            fc.tuple(...ons.map((on) => fc.integer({ min: 0, max: 2 }).map((k) => ({ on, onSuccess: k > 0 })))),
          ),
      }),
    ),
  ),
);

type Status = WorkflowStepStatus;
const TERMINAL: readonly Status[] = ["SUCCEEDED", "FAILED", "CANCELED"];
const isTerminal = (s: Status) => TERMINAL.includes(s);

/** The model: statuses by node, moved by the rule alone. */
class Model {
  readonly status: Status[];
  readonly unsatisfied = new Set<number>();
  /** JOB nodes released at some point: they have a job. */
  readonly released = new Set<number>();
  canceledRun = false;

  constructor(readonly nodes: Node[]) {
    this.status = nodes.map(() => "BLOCKED");
    this.settle();
  }

  append(nodes: readonly Node[]): void {
    for (const node of nodes) {
      this.nodes.push(node);
      this.status.push("BLOCKED");
    }
    this.settle();
  }

  finish(index: number, status: Status): void {
    this.status[index] = status;
    this.settle();
  }

  cancelRun(): void {
    this.canceledRun = true;
    this.status.forEach((s, i) => {
      if (!isTerminal(s)) this.status[i] = "CANCELED";
    });
  }

  /** Decide every BLOCKED node whose prerequisites have all finished, until none is left. */
  settle(): void {
    for (let changed = true; changed; ) {
      changed = false;
      this.nodes.forEach((node, i) => {
        if (this.status[i] !== "BLOCKED") return;
        if (!node.dependencies.every((d) => isTerminal(this.status[d.on]!))) return;
        changed = true;
        if (node.dependencies.some((d) => d.onSuccess && this.status[d.on] !== "SUCCEEDED")) {
          this.status[i] = "CANCELED";
          this.unsatisfied.add(i);
        } else if (!this.canceledRun) {
          this.status[i] = node.external ? "WAITING_FOR_EXTERNAL" : "ENQUEUED";
          if (!node.external) this.released.add(i);
        } else {
          changed = false;
        }
      });
    }
  }

  counters(i: number) {
    const deps = this.nodes[i]!.dependencies;
    return {
      pending: deps.filter((d) => !isTerminal(this.status[d.on]!)).length,
      unsatisfied: deps.filter((d) => d.onSuccess && ["FAILED", "CANCELED"].includes(this.status[d.on]!)).length,
    };
  }

  runStatus(): string {
    if (this.canceledRun) return "CANCELED";
    if (this.status.some((s) => ["BLOCKED", "ENQUEUED", "RUNNING"].includes(s))) return "RUNNING";
    if (this.status.includes("WAITING_FOR_EXTERNAL")) return "WAITING_FOR_EXTERNAL";
    if (this.status.some((s) => s === "FAILED" || s === "CANCELED")) return "COMPLETED_WITH_ERRORS";
    return "SUCCEEDED";
  }
}

function stepOf(node: Node, i: number) {
  const step = node.external ? Step.tryExternal(`s${i}`, {}) : Step.tryJob(`s${i}`, JOB_TYPE, { i });
  const onSuccess = node.dependencies.filter((d) => d.onSuccess).map((d) => `s${d.on}`);
  const onTerminal = node.dependencies.filter((d) => !d.onSuccess).map((d) => `s${d.on}`);
  if (onSuccess.length > 0) step.dependsOnSuccess(onSuccess);
  if (onTerminal.length > 0) step.dependsOnTerminal(onTerminal);
  return step;
}

async function check(runId: string, model: Model): Promise<Map<string, { id: string; jobId: string | null }>> {
  const steps = new Map((await runSteps(db, runId)).map((s) => [s.stepKey, s]));
  model.nodes.forEach((_, i) => {
    const step = steps.get(`s${i}`)!;
    const expected = model.counters(i);
    expect({
      step: i,
      status: step.status,
      pending: step.dependencyCountPending,
      unsatisfied: step.dependencyCountUnsatisfied,
      dependencyUnsatisfied: step.lastErrorCode === "workflow.dependency_unsatisfied",
      hasJob: step.jobId !== null,
    }).toEqual({
      step: i,
      status: model.status[i],
      pending: expected.pending,
      unsatisfied: expected.unsatisfied,
      dependencyUnsatisfied: model.unsatisfied.has(i),
      hasJob: model.released.has(i),
    });
  });
  expect((await getWorkflowRunById(db, runId, ALL_ORGANIZATIONS))?.status).toBe(model.runStatus());
  return new Map([...steps].map(([key, s]) => [key, { id: s.id, jobId: s.jobId }]));
}

describe("propagation through random DAGs", () => {
  it("releases and cancels exactly the steps the rule says, with counters to match, until the run ends", async () => {
    await fc.assert(
      fc.asyncProperty(
        dagArbitrary,
        fc.boolean(),
        fc.array(fc.nat(1_000_000), { minLength: 40, maxLength: 40 }),
        async (nodes, keyed, choices) => {
          let run = WorkflowRunEnqueueBuilder.tryNew("propagation", {});
          if (keyed) run = run.idempotencyKey(`k-${Math.random()}`);
          nodes.forEach((node, i) => {
            run = run.step(stepOf(node, i));
          });
          const { id: runId } = await enqueueWorkflowRun(db, run.build());
          const model = new Model([...nodes]);
          let steps = await check(runId, model);
          const keyOf = (stepId: string) => [...steps].find(([, s]) => s.id === stepId)![0];
          for (const choice of choices) {
            const live = model.status.some((s) => s === "ENQUEUED" || s === "RUNNING" || s === "WAITING_FOR_EXTERNAL");
            if (!live) break;
            if (choice % 23 === 0) {
              await cancelWorkflowRun(db, { workflowRunId: runId, scope: ALL_ORGANIZATIONS });
              model.cancelRun();
              await check(runId, model);
              break;
            }
            const gates = model.status.flatMap((s, i) => (s === "WAITING_FOR_EXTERNAL" ? [i] : []));
            if (gates.length > 0 && choice % 5 === 1) {
              // Append one to three steps through an open gate, on earlier steps, finished or not.
              const first = model.nodes.length;
              const added = Array.from({ length: 1 + (choice % 3) }, (_, j): Node => {
                const bits = choice >> (4 * j);
                const on = [...new Set([bits % (first + j), (bits >> 2) % (first + j)])];
                return {
                  external: false,
                  dependencies: on.map((o, k) => ({ on: o, onSuccess: ((bits >> (k + 8)) & 1) === 1 })),
                };
              });
              await appendWorkflowSteps(db, {
                workflowRunId: runId,
                scope: ALL_ORGANIZATIONS,
                mutationKey: `m${first}`,
                appendWindowStepKey: `s${gates[0]}`,
                steps: added.map((node, j) => stepOf(node, first + j).build()),
              });
              model.append(added);
            } else if (gates.length > 0 && choice % 3 === 0) {
              const gate = gates[choice % gates.length]!;
              const terminalStatus = (["SUCCEEDED", "FAILED", "CANCELED"] as const)[(choice >> 2) % 3]!;
              await completeExternalWorkflowStep(db, {
                workflowRunId: runId,
                scope: ALL_ORGANIZATIONS,
                stepKey: `s${gate}`,
                terminalStatus,
              });
              model.finish(gate, terminalStatus);
            } else {
              const claimed = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 50, jobTypes: [JOB_TYPE] });
              const successes = [];
              for (const [n, job] of claimed.entries()) {
                const i = Number(keyOf(job.workflowStepId!).slice(1));
                const lease = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" };
                const outcome = (choice >> n) % 5;
                if (outcome === 0) {
                  await completeJobFailure(db, { lease, kind: "TERMINAL", code: "app.failed", message: "no" });
                  model.finish(i, "FAILED");
                } else if (outcome === 1) {
                  await cancelJob(db, { jobId: job.id, scope: ALL_ORGANIZATIONS });
                  model.finish(i, "CANCELED");
                } else {
                  successes.push({ lease, index: i });
                }
              }
              // One batch: the successes settle together, as a worker's completion batch does.
              const results = await completeJobsSuccess(
                db,
                successes.map(({ lease }) => ({ lease })),
              );
              expect(results.every((r) => r.ok)).toBe(true);
              for (const { index } of successes) model.status[index] = "SUCCEEDED";
              model.settle();
            }
            steps = await check(runId, model);
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 180_000);
});
