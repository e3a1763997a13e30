import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, MAX_JSON_BYTES } from "../../src/core/index.ts";
import {
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  insertJobLog,
  type JobCursor,
  LIST_JOBS_PAGE_BYTES,
  listDeadLetters,
  listJobAttempts,
  listJobDefinitions,
  listJobEvents,
  listJobLogs,
  listJobRuntimeConfigs,
  listJobSchedules,
  listJobs,
  listWorkflowRuns,
  listWorkflowStepDependencies,
  listWorkflowSteps,
  type Page,
  upsertJobRuntimeConfig,
  upsertJobSchedule,
  type WorkflowRunCursor,
  type WorkflowStepCursor,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

/*
 * Rows written by one statement or transaction share `now()` to the microsecond, while a cursor's
 * `Date` holds milliseconds: paging through them must neither skip nor repeat a row.
 */

const { db } = await useTestDatabase();

async function pageThrough<C>(
  read: (after: C | undefined) => Promise<{ items: { id: string }[]; next: C | null }>,
): Promise<string[]> {
  const seen: string[] = [];
  let after: C | undefined;
  for (;;) {
    const page = await read(after);
    seen.push(...page.items.map((item) => item.id));
    if (page.next === null) return seen;
    after = page.next;
  }
}

describe("keyset pages over rows created at the same instant", () => {
  it("listJobs returns every job of one batch once", async () => {
    await defineJob(db, "paged.job");
    const batch = await enqueueJobs(
      db,
      Array.from({ length: 10 }, (_, i) => ({ jobType: "paged.job", payload: { i } })),
    );
    const seen = await pageThrough<JobCursor>((after) =>
      listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "paged.", limit: 3, after }),
    );
    expect(seen.sort()).toEqual(batch.map((job) => job.id).sort());
  });

  it("listWorkflowRuns returns every run of one transaction once", async () => {
    const ids = await db.transaction(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 7; i++) {
        const run = await enqueueWorkflowRun(tx, {
          workflowType: "paged.flow",
          organizationId: null,
          metadata: {},
          idempotencyKey: null,
          steps: [externalStep("gate")],
        });
        out.push(run.id);
      }
      return out;
    });
    const seen = await pageThrough<WorkflowRunCursor>((after) =>
      listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, workflowTypeContains: "paged.", limit: 2, after }),
    );
    expect(seen.sort()).toEqual(ids.sort());
  });
});

describe("listWorkflowSteps", () => {
  it("pages through a run's steps (created in one statement) in order, each once", async () => {
    const keys = Array.from({ length: 11 }, (_, i) => `s${String(i).padStart(2, "0")}`);
    const run = await enqueueWorkflowRun(db, {
      workflowType: "paged.steps",
      organizationId: null,
      metadata: {},
      idempotencyKey: null,
      steps: keys.map((key) => externalStep(key)),
    });
    const whole = await listWorkflowSteps(db, { workflowRunId: run.id, scope: ALL_ORGANIZATIONS, limit: 1000 });
    expect(whole.next).toBeNull();
    expect(whole.items.map((s) => s.stepKey).sort()).toEqual(keys);
    const seen = await pageThrough<WorkflowStepCursor>((after) =>
      listWorkflowSteps(db, { workflowRunId: run.id, scope: ALL_ORGANIZATIONS, limit: 4, after }),
    );
    expect(seen).toEqual(whole.items.map((s) => s.id));
  });

  it("refuses a bad limit or cursor", async () => {
    const input = { workflowRunId: "00000000-0000-7000-8000-000000000000", scope: ALL_ORGANIZATIONS };
    await expect(listWorkflowSteps(db, { ...input, limit: 0 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
    await expect(
      listWorkflowSteps(db, { ...input, limit: 1, after: { createdAt: new Date(Number.NaN), id: "x" } }),
    ).rejects.toMatchObject({ code: "job.invalid_pagination" });
  });
});

describe("every list read returns one page shape", () => {
  it("{ items, next }: `next` is the `after` of the following page, null on the last", async () => {
    await defineJob(db, "shape.job", { maxAttempts: 2 });
    const jobId = (await enqueueJob(db, { jobType: "shape.job", payload: {} })).id;
    for (let attempt = 1; attempt <= 2; attempt++) {
      await db.execute(sql`update runledger.job_queue set next_run_at = now() where id = ${jobId}`);
      const [claimed] = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1, jobTypes: ["shape.job"] });
      expect(claimed?.id).toBe(jobId);
      const lease = { jobId, runNumber: 1, attempt, workerId: "w" };
      for (const message of ["one", "two"]) {
        await insertJobLog(db, { scope: ALL_ORGANIZATIONS, jobId, runNumber: 1, attempt, level: "info", message });
      }
      await completeJobFailure(db, {
        lease,
        kind: "RETRYABLE",
        code: "shape.failed",
        message: "again",
        retryDelayMs: 1,
      });
    }
    await enqueueJob(db, { jobType: "shape.job", payload: {} });
    for (const name of ["shape.a", "shape.b", "shape.c"]) {
      await upsertJobSchedule(db, { name, jobType: "shape.job", cronExpr: "0 0 0 * * *", nextFireAt: new Date() });
      await defineJob(db, name);
      await upsertJobRuntimeConfig(db, { jobType: name, schemaVersion: 1, config: {} });
    }
    const dag = await enqueueWorkflowRun(db, {
      workflowType: "shape.flow",
      organizationId: null,
      metadata: {},
      idempotencyKey: null,
      steps: [
        externalStep("gate"),
        externalStep("a", ["gate"]),
        externalStep("b", ["gate"]),
        externalStep("c", ["a", "b", "gate"]),
      ],
    });
    const scope = ALL_ORGANIZATIONS;
    // Each list read, and a key per item that identifies it.
    const reads: Record<
      string,
      [(limit: number, after?: never) => Promise<Page<unknown, unknown>>, (item: never) => unknown]
    > = {
      listJobs: [
        (limit, after) => listJobs(db, { scope, jobTypeContains: "shape.", limit, after }),
        (j: { id: string }) => j.id,
      ],
      listJobEvents: [(limit, after) => listJobEvents(db, { scope, jobId, limit, after }), (e: { id: number }) => e.id],
      listJobAttempts: [
        (limit, after) => listJobAttempts(db, { scope, jobId, limit, after }),
        (a: { attempt: number }) => a.attempt,
      ],
      listJobLogs: [(limit, after) => listJobLogs(db, { scope, jobId, limit, after }), (l: { id: number }) => l.id],
      listJobSchedules: [
        (limit, after) => listJobSchedules(db, { scope, limit, after }),
        (s: { name: string }) => s.name,
      ],
      listDeadLetters: [
        (limit, after) => listDeadLetters(db, { scope, limit, after }),
        (d: { jobId: string }) => d.jobId,
      ],
      listWorkflowStepDependencies: [
        (limit, after) => listWorkflowStepDependencies(db, { workflowRunId: dag.id, scope, limit, after }),
        (e: { dependentStepKey: string; prerequisiteStepKey: string }) =>
          `${e.prerequisiteStepKey}->${e.dependentStepKey}`,
      ],
      listJobDefinitions: [
        (limit, after) => listJobDefinitions(db, { jobTypeContains: "shape.", limit, after }),
        (d: { jobType: string }) => d.jobType,
      ],
      listJobRuntimeConfigs: [
        (limit, after) => listJobRuntimeConfigs(db, { limit, after }),
        (c: { jobType: string }) => c.jobType,
      ],
    };
    for (const [name, [read, key]] of Object.entries(reads)) {
      const whole = await read(1000);
      expect(Object.keys(whole).sort(), name).toEqual(["items", "next"]);
      expect(whole.next, name).toBeNull();
      const seen: unknown[] = [];
      let after: unknown;
      for (let pages = 0; ; pages++) {
        const page = await read(1, after as never);
        expect(Object.keys(page).sort(), name).toEqual(["items", "next"]);
        seen.push(...page.items.map((item) => key(item as never)));
        if (page.next === null) break;
        after = page.next;
        expect(pages, name).toBeLessThan(100);
      }
      expect(seen, name).toEqual(whole.items.map((item) => key(item as never)));
      // The one dead letter (the job failed both attempts); more than one page of each other read.
      expect(seen.length, name).toBeGreaterThan(name === "listDeadLetters" ? 0 : 1);
    }
  });
});

describe("listJobs", () => {
  it(`caps a page at ${LIST_JOBS_PAGE_BYTES} bytes of rows as well as at its limit`, async () => {
    await defineJob(db, "bytes.job");
    // Five jobs of 0.9 MiB each: four fit the 4 MiB budget, so a page of ten stops at four.
    const big = "x".repeat(Math.floor(0.9 * MAX_JSON_BYTES));
    const ids = (
      await enqueueJobs(
        db,
        Array.from({ length: 5 }, (_, i) => ({ jobType: "bytes.job", payload: { i, big } })),
      )
    ).map((job) => job.id);
    const first = await listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "bytes.", limit: 10 });
    expect(first.items).toHaveLength(4);
    expect(first.next).not.toBeNull();
    const bytes = first.items.reduce((sum, job) => sum + JSON.stringify(job.payload).length, 0);
    expect(bytes).toBeLessThanOrEqual(LIST_JOBS_PAGE_BYTES);
    const seen = await pageThrough<JobCursor>((after) =>
      listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "bytes.", limit: 10, after }),
    );
    expect(seen.sort()).toEqual(ids.sort());
    // Small rows are capped by the limit alone.
    const small = await listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "paged.", limit: 10 });
    expect(small.items).toHaveLength(10);
  });
});
