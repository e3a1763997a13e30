import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, newId, RunledgerError } from "../../src/core/index.ts";
import {
  cancelJobs,
  countJobs,
  enqueueJobs,
  enqueueWorkflowRun,
  getJobById,
  getWorkflowRunById,
  listJobEvents,
  queryRows,
  requeueJobs,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase({ max: 12 });

beforeAll(async () => {
  await defineJob(db, "bulk.a", { maxAttempts: 1 });
  await defineJob(db, "bulk.b", { maxAttempts: 1 });
  await defineJob(db, "bulk.c");
  await defineJob(db, "bulk.step", { maxAttempts: 1 });
});

/** Dead-letter the pending jobs of `jobType` (maxAttempts 1). */
async function deadLetter(jobType: string, n: number): Promise<string[]> {
  const claimed = await claimJobs(db, { workerId: "w-bulk", leaseSeconds: 60, limit: n, jobTypes: [jobType] });
  for (const job of claimed) {
    const lease = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w-bulk" };
    await completeJobFailure(db, { lease, kind: "TERMINAL", code: "bulk.failed", message: "failed" });
  }
  return claimed.map((j) => j.id);
}

const jobStep = (org: string) =>
  externalStep("only", [], { executionKind: "JOB", jobType: "bulk.step", organizationId: org });

const statusOf = async (ids: string[]) =>
  Promise.all(ids.map(async (id) => (await getJobById(db, id, ALL_ORGANIZATIONS))!.status));

describe("countJobs, cancelJobs, requeueJobs", () => {
  it("count what a cancel would change, then cancel exactly those of the scope and type", async () => {
    const org = newId();
    const other = newId();
    const mine = await enqueueJobs(
      db,
      Array.from({ length: 7 }, () => ({ jobType: "bulk.a", organizationId: org })),
    );
    const notMine = await enqueueJobs(db, [
      { jobType: "bulk.a", organizationId: other },
      { jobType: "bulk.c", organizationId: org },
    ]);
    const filter = { scope: { organizationId: org }, jobType: "bulk.a" };
    expect(await countJobs(db, filter)).toEqual({ matched: 7, cancelable: 7, requeueable: 0, capped: false });
    expect(await countJobs(db, { ...filter, limit: 5 })).toEqual({
      matched: 5,
      cancelable: 5,
      requeueable: 0,
      capped: true,
    });

    const result = await cancelJobs(db, { ...filter, reason: "bulk test" });
    expect(result.count).toBe(7);
    expect(new Set(await statusOf(mine.map((j) => j.id)))).toEqual(new Set(["CANCELED"]));
    expect(await statusOf(notMine.map((j) => j.id))).toEqual(["PENDING", "PENDING"]);
    const events = (await listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: mine[0]!.id, limit: 10 })).items;
    expect(events.at(-1)).toMatchObject({ eventType: "CANCELED", payload: { reason: "bulk test" } });
    // Nothing left to cancel: a second run changes nothing.
    expect(await cancelJobs(db, filter)).toEqual({ count: 0, batches: 0 });
  });

  it("works in batches and stops at the limit", async () => {
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 1100 }, () => ({ jobType: "bulk.a", organizationId: org })),
    );
    const scope = { organizationId: org };
    const first = await cancelJobs(db, { scope, limit: 600 });
    expect(first).toEqual({ count: 600, batches: 2 });
    const rest = await cancelJobs(db, { scope });
    expect(rest).toEqual({ count: 500, batches: 1 });
    expect(await countJobs(db, { scope, statuses: ["CANCELED"] })).toMatchObject({ matched: 1100 });
  });

  it("requeue dead letters by type and failure time; workflow steps' jobs are passed over", async () => {
    const org = newId();
    const before = new Date(Date.now() - 60_000);
    await enqueueJobs(
      db,
      Array.from({ length: 3 }, () => ({ jobType: "bulk.b", organizationId: org })),
    );
    const dead = await deadLetter("bulk.b", 3);
    const run = await enqueueWorkflowRun(db, {
      workflowType: "bulk.flow",
      organizationId: org,
      metadata: {},
      idempotencyKey: null,
      steps: [jobStep(org)],
    });
    const [stepJob] = await deadLetter("bulk.step", 1);
    const scope = { organizationId: org };
    expect(await countJobs(db, { scope, statuses: ["DEAD_LETTERED"] })).toEqual({
      matched: 4,
      cancelable: 0,
      requeueable: 3,
      capped: false,
    });
    // A failure-time window that excludes them all changes nothing.
    expect(await requeueJobs(db, { scope, statuses: ["DEAD_LETTERED"], finishedBefore: before })).toEqual({
      count: 0,
      batches: 0,
    });
    const result = await requeueJobs(db, { scope, statuses: ["DEAD_LETTERED"], finishedAfter: before });
    expect(result.count).toBe(3);
    for (const id of dead)
      expect(await getJobById(db, id, ALL_ORGANIZATIONS)).toMatchObject({ status: "PENDING", runNumber: 2 });
    expect(await getJobById(db, stepJob!, ALL_ORGANIZATIONS)).toMatchObject({ status: "DEAD_LETTERED", runNumber: 1 });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))?.status).toBe("COMPLETED_WITH_ERRORS");
  });

  it("canceling a workflow step's job cancels its step, as cancelJob does", async () => {
    const org = newId();
    const run = await enqueueWorkflowRun(db, {
      workflowType: "bulk.flow",
      organizationId: org,
      metadata: {},
      idempotencyKey: null,
      steps: [jobStep(org)],
    });
    expect(await cancelJobs(db, { scope: { organizationId: org }, jobType: "bulk.step" })).toMatchObject({ count: 1 });
    const [step] = await runSteps(db, run.id);
    expect(step?.status).toBe("CANCELED");
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))?.status).toBe("COMPLETED_WITH_ERRORS");
  });

  it("two bulk cancels racing cancel each job exactly once", async () => {
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 1200 }, () => ({ jobType: "bulk.a", organizationId: org })),
    );
    const scope = { organizationId: org };
    const results = await Promise.all([
      cancelJobs(db, { scope }),
      cancelJobs(db, { scope }),
      cancelJobs(db, { scope }),
    ]);
    expect(results.reduce((sum, r) => sum + r.count, 0)).toBe(1200);
    const [row] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_events e join runledger.job_queue j on j.id = e.job_id
        where j.organization_id = ${org} and e.event_type = 'CANCELED'`,
    );
    expect(row!.n).toBe(1200);
  });

  it("refuses a missing scope or a bad filter before writing anything", async () => {
    const before = await ledgerCounts(db);
    const refused = async (call: () => Promise<unknown>, code: string) => {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RunledgerError);
      expect((error as RunledgerError).code).toBe(code);
    };
    await refused(() => cancelJobs(db, {} as never), "scope.required");
    await refused(() => requeueJobs(db, { scope: undefined } as never), "scope.required");
    await refused(
      () => countJobs(db, { scope: ALL_ORGANIZATIONS, statuses: ["NOPE" as never] }),
      "job.invalid_pagination",
    );
    await refused(() => cancelJobs(db, { scope: ALL_ORGANIZATIONS, limit: 0 }), "job.invalid_pagination");
    await refused(
      () => requeueJobs(db, { scope: ALL_ORGANIZATIONS, createdAfter: new Date(Number.NaN) }),
      "job.invalid_pagination",
    );
    await refused(() => cancelJobs(db, { scope: ALL_ORGANIZATIONS, reason: " " }), "job.invalid_pagination");
    expect(await ledgerCounts(db)).toEqual(before);
  });
});
