import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  WorkflowStepEnqueueBuilder as Step,
  WorkflowRunEnqueueBuilder,
} from "../../src/core/index.ts";
import { enqueueWorkflowRun, getWorkflowRunById, queryRows } from "../../src/store/index.ts";
import { stepReleaseLockKey } from "../../src/store/sql/workflows/locks.ts";
import { claimJobs, completeJobFailure, completeJobsSuccess, type LeaseIdentity } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, eventTypes, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase({ max: 4 });

beforeAll(async () => {
  await defineJob(db, "settle.a", { maxAttempts: 1 });
  await defineJob(db, "settle.b", { maxAttempts: 1 });
});

/** run: a → (g: gate after a terminates, b: job after a succeeds). */
function gateAndJob() {
  return WorkflowRunEnqueueBuilder.tryNew("settle", {})
    .step(Step.tryJob("a", "settle.a", {}))
    .step(Step.tryExternal("g", {}).dependsOnTerminal(["a"]))
    .step(Step.tryJob("b", "settle.b", {}).dependsOnSuccess(["a"]))
    .build();
}

async function claimRoots(count: number): Promise<LeaseIdentity[]> {
  const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: count, jobTypes: ["settle.a"] });
  expect(jobs).toHaveLength(count);
  return jobs.map((job) => ({ jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" }));
}

async function stepsOf(runId: string) {
  return new Map((await runSteps(db, runId)).map((step) => [step.stepKey, step]));
}

describe("settling a batch of step completions across runs", () => {
  it("releases JOB and EXTERNAL dependents of every run in the batch, each JOB with its own job and event", async () => {
    const runs = [await enqueueWorkflowRun(db, gateAndJob()), await enqueueWorkflowRun(db, gateAndJob())];
    const leases = await claimRoots(2);
    expect(
      (
        await completeJobsSuccess(
          db,
          leases.map((lease) => ({ lease })),
        )
      ).every((r) => r.ok),
    ).toBe(true);
    const jobIds = new Set<string>();
    for (const run of runs) {
      const steps = await stepsOf(run.id);
      expect(steps.get("a")).toMatchObject({ status: "SUCCEEDED", statusReason: "SUCCEEDED" });
      expect(steps.get("g")).toMatchObject({
        status: "WAITING_FOR_EXTERNAL",
        jobId: null,
        startedAt: null,
        finishedAt: null,
        dependencyCountPending: 0,
      });
      expect(steps.get("g")!.releasedAt).toBeInstanceOf(Date);
      const b = steps.get("b")!;
      expect(b).toMatchObject({ status: "ENQUEUED", dependencyCountPending: 0, dependencyCountUnsatisfied: 0 });
      expect(b.releasedAt).toBeInstanceOf(Date);
      const [job] = await queryRows<{ status: string; workflow_step_id: string; job_type: string }>(
        db,
        sql`select status, workflow_step_id, job_type from runledger.job_queue where id = ${b.jobId}`,
      );
      expect(job).toEqual({ status: "PENDING", workflow_step_id: b.id, job_type: "settle.b" });
      expect(await eventTypes(db, b.jobId!)).toEqual(["ENQUEUED"]);
      expect(b.jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      jobIds.add(b.jobId!);
      expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))?.status).toBe("RUNNING");
    }
    expect(jobIds.size).toBe(2);
  });

  it("cancels dependents a failure can no longer satisfy, and finishes the run", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("settle", {})
        .step(Step.tryJob("a", "settle.a", {}))
        .step(Step.tryJob("b", "settle.b", {}).dependsOnSuccess(["a"]))
        .step(Step.tryExternal("c", {}).dependsOnSuccess(["b"]))
        .build(),
    );
    const [lease] = await claimRoots(1);
    await completeJobFailure(db, { lease: lease!, kind: "TERMINAL", code: "app.failed", message: "no" });
    const steps = await stepsOf(run.id);
    expect([...steps.values()].map((s) => [s.stepKey, s.status, s.statusReason])).toEqual([
      ["a", "FAILED", "TERMINAL"],
      ["b", "CANCELED", "workflow.dependency_unsatisfied"],
      ["c", "CANCELED", "workflow.dependency_unsatisfied"],
    ]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))?.status).toBe("COMPLETED_WITH_ERRORS");
  });

  it("keeps a failure's message on its step as written, quotes, braces and line breaks included", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("settle", {})
        .step(Step.tryJob("a", "settle.a", {}))
        .build(),
    );
    const [lease] = await claimRoots(1);
    const message = 'a "quoted" {brace}, a back\\slash\nand NULL, ünïcødé 😀';
    await completeJobFailure(db, { lease: lease!, kind: "TERMINAL", code: "app.odd_failure", message });
    expect((await stepsOf(run.id)).get("a")).toMatchObject({
      status: "FAILED",
      lastErrorCode: "app.odd_failure",
      lastErrorMessage: message,
    });
  });

  it("waits for a cancellation holding one run's release lock, then settles the whole batch", async () => {
    const runs = [await enqueueWorkflowRun(db, gateAndJob()), await enqueueWorkflowRun(db, gateAndJob())];
    const leases = await claimRoots(2);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${stepReleaseLockKey(runs[1]!.id)}::bigint)`);
      locked();
      await held;
    });
    await isLocked;
    const completing = completeJobsSuccess(
      db,
      leases.map((lease) => ({ lease })),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await stepsOf(runs[0]!.id)).get("a")?.status).toBe("RUNNING");
    release();
    await holder;
    expect((await completing).every((r) => r.ok)).toBe(true);
    for (const run of runs) {
      const steps = await stepsOf(run.id);
      expect([...steps.values()].map((s) => s.status)).toEqual(["SUCCEEDED", "WAITING_FOR_EXTERNAL", "ENQUEUED"]);
    }
  });
});
