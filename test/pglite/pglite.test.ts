import type { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  WorkflowStepEnqueueBuilder as Step,
  WorkflowDagBuilder,
  WorkflowRunEnqueueBuilder,
} from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import {
  backfillJobSchedule,
  cancelJob,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  createDb,
  createEmbeddedDb,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  ensureSchemaCompatible,
  getJobById,
  getJobMetrics,
  getJobRuntimeConfig,
  getWorkflowRunById,
  insertJobLog,
  inspectSchema,
  JOBS_CHANNEL,
  listJobEvents,
  listJobLogs,
  listJobs,
  migrate,
  queryRows,
  type RunledgerDb,
  requeueJob,
  setJobScheduleActive,
  upsertJobRuntimeConfig,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { statement } from "../../src/store/query.ts";
import {
  claimJobs,
  completeJobFailure,
  completeJobSuccess,
  heartbeatJobs,
  materializeDueSchedules,
  reapExpiredLeases,
  updateJobProgress,
} from "../../src/store/worker.ts";
import { runSteps } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

/*
 * One in-memory PGlite instance for the whole file: creating one costs ~4 s and ~0.8 GB, so
 * this is a smoke suite of the embedded driver, not a second copy of the PostgreSQL suite.
 */
let db: RunledgerDb;

const catalog = new JobCatalog()
  .job("smoke.plain", async () => {})
  // Never run by a supervisor here: the tests below drive these jobs by hand.
  .job("smoke.manual", async () => {
    throw new Error("smoke.manual is driven by hand");
  })
  .job("profiles.crawl", async (_payload, context) => {
    await context.progress({ progressDone: 1, progressTotal: 1 });
  })
  .job("profiles.classify", async () => {})
  .job("profiles.score", async () => {})
  .job("profiles.persist", async () => {});

beforeAll(async () => {
  db = await createEmbeddedDb();
}, 60_000);

afterAll(async () => {
  await db?.$runledger.close();
});

describe("PGlite driver", () => {
  it("is a pglite handle and applies the bundled migrations once", async () => {
    expect(db.$runledger.kind).toBe("pglite");
    expect((await inspectSchema(db)).state).toBe("uninitialized");
    expect(await migrate(db)).toMatchObject({ state: "current", pending: 0 });
    expect(await migrate(db)).toMatchObject({ state: "current", pending: 0 });
    expect((await ensureSchemaCompatible(db)).state).toBe("current");
    await catalog.syncDefinitions(db);
  });

  it("enqueues a batch whose columns mix values and nulls", async () => {
    const later = new Date(Date.now() + 60_000);
    const jobs = await enqueueJobs(db, [
      { jobType: "smoke.plain", payload: { n: 'a"b\\c,{}' } },
      { jobType: "smoke.plain", priority: 5, nextRunAt: later, idempotencyKey: "batch:1" },
    ]);
    const rows = await queryRows<{ payload: unknown; priority: number; next_run_at: Date; idempotency_key: string }>(
      db,
      sql`select payload, priority, next_run_at, idempotency_key from runledger.job_queue
        where id in (${jobs[0]!.id}, ${jobs[1]!.id}) order by idempotency_key nulls first`,
    );
    expect(rows.map((r) => [r.payload, r.idempotency_key])).toEqual([
      [{ n: 'a"b\\c,{}' }, null],
      [{}, "batch:1"],
    ]);
    expect(rows[1]!.priority).toBe(5);
    expect(new Date(rows[1]!.next_run_at).getTime()).toBe(later.getTime());
    // Keep the later tests' claims to their own jobs.
    await db.execute(sql`delete from runledger.job_queue where id in (${jobs[0]!.id}, ${jobs[1]!.id})`);
  });

  it("enqueues, claims and completes a job with typed rows", async () => {
    const { id } = await catalog.enqueue(db, "smoke.plain", { n: 1 });
    const [job] = await claimJobs(db, { workerId: "w1", leaseSeconds: 30, limit: 5, jobTypes: ["smoke.plain"] });
    expect(job).toMatchObject({ id, status: "LEASED", attempt: 1, runNumber: 1, payload: { n: 1 }, workerId: "w1" });
    expect(job!.nextRunAt).toBeInstanceOf(Date);
    expect(Number.isNaN(job!.leaseExpiresAt!.getTime())).toBe(false);
    expect(job!.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    await completeJobSuccess(db, {
      lease: { jobId: id, runNumber: 1, attempt: 1, workerId: "w1" },
      progressDone: 3,
      progressTotal: 4,
      checkpoint: { cursor: "c1" },
    });
    const done = (await getJobById(db, id, ALL_ORGANIZATIONS))!;
    expect(done).toMatchObject({
      status: "SUCCEEDED",
      progressDone: 3,
      progressTotal: 4,
      checkpoint: { cursor: "c1" },
    });
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect(
      (await listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: id, limit: 50 })).items.map((e) => e.eventType),
    ).toEqual(["ENQUEUED", "LEASED", "SUCCEEDED"]);
    const metrics = await getJobMetrics(db, { scope: ALL_ORGANIZATIONS });
    expect(JSON.parse(JSON.stringify(metrics))).toEqual(metrics); // no bigint or other non-JSON values
  });

  it("writes atomically inside a transaction through the transaction handle", async () => {
    const id = await db.transaction(async (tx) => (await catalog.enqueue(tx, "smoke.plain", { n: 2 })).id);
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
    await expect(
      db.transaction(async (tx) => {
        await catalog.enqueue(tx, "smoke.plain", { n: 3 });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const rows = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue where payload @> '{"n":3}'`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it("runs a prepared statement on the db, in a transaction and in a savepoint", async () => {
    // statement() goes through drizzle's session (see sendPrepared in src/store/query.ts).
    expect(db.$runledger.prepare).toBe(false);
    await db.execute(sql`create table if not exists public.statement_notes (id int primary key)`);
    const insert = statement<{ id: number }>(
      "runledger_test_pglite_insert",
      sql`insert into public.statement_notes (id) values (${sql.placeholder("id")}::int) returning id`,
    );
    expect(await insert.run(db, { id: 1 })).toEqual([{ id: 1 }]);
    await db.transaction(async (tx) => {
      await insert.run(tx, { id: 2 });
      await tx
        .transaction(async (savepoint) => {
          await insert.run(savepoint, { id: 3 });
          savepoint.rollback();
        })
        .catch(() => {});
    });
    const rows = await queryRows<{ id: number }>(db, sql`select id from public.statement_notes order by id`);
    expect(rows.map((row) => row.id)).toEqual([1, 2]);
    await db.execute(sql`drop table public.statement_notes`);
  });

  it("runs a workflow to SUCCEEDED with a supervisor", async () => {
    const run = WorkflowDagBuilder.new("profiles.research", { source: "pglite" })
      .job("crawl", "profiles.crawl", { profile_id: "p_1" })
      .job("classify", "profiles.classify", { profile_id: "p_1" })
      .afterSuccess("classify", ["crawl"])
      .job("persist", "profiles.persist", { profile_id: "p_1" })
      .afterSuccess("persist", ["classify"])
      .build();
    const { id } = await enqueueWorkflowRun(db, run);
    const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 50, leaseTtlSeconds: 10 }))
      .withCatalog(catalog)
      .build();
    supervisor.start();
    try {
      await waitFor(async () => (await getWorkflowRunById(db, id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
        what: "the workflow run",
      });
    } finally {
      await supervisor.shutdown(5000);
    }
    const steps = await runSteps(db, id);
    expect(steps.map((s) => [s.stepKey, s.status])).toEqual([
      ["crawl", "SUCCEEDED"],
      ["classify", "SUCCEEDED"],
      ["persist", "SUCCEEDED"],
    ]);
    expect(steps.every((s) => s.finishedAt instanceof Date && s.startedAt instanceof Date)).toBe(true);
  });

  it("delivers NOTIFY through PGlite's listen and wakes an idle worker", async () => {
    const received: string[] = [];
    const subscription = await db.$runledger.listen("runledger_smoke", (payload) => received.push(payload));
    await db.execute(sql`select pg_notify('runledger_smoke', 'hello')`);
    await waitFor(() => received.length > 0, { what: "the notification" });
    await subscription.unlisten();
    expect(received).toEqual(["hello"]);

    // A poll interval far beyond the wait below: only the notification can wake the worker.
    const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 60_000, leaseTtlSeconds: 10 }))
      .withCatalog(catalog)
      .build();
    const woken: string[] = [];
    const wake = await db.$runledger.listen(JOBS_CHANNEL, () => woken.push("jobs"));
    supervisor.start();
    try {
      // Let the worker's first claim pass find nothing, so it is waiting when the job arrives.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { id } = await catalog.enqueue(db, "smoke.plain", { n: 4 });
      await waitFor(async () => (await getJobById(db, id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
        timeoutMs: 5000,
        what: "the notified job",
      });
      expect(woken.length).toBeGreaterThan(0);
    } finally {
      await wake.unlisten();
      await supervisor.shutdown(5000);
    }
  });

  it("runs leases, failures, the reaper, cancellation, idempotency, schedules and external steps", async () => {
    const nextRunAt = new Date(Date.now() - 1000);
    const input = { jobType: "smoke.manual", payload: { k: 1 }, idempotencyKey: "smoke:k1", nextRunAt };
    const first = await enqueueJob(db, input);
    expect(await enqueueJob(db, input)).toEqual({ id: first.id, created: false });

    const claim = async (workerId: string) =>
      (await claimJobs(db, { workerId, leaseSeconds: 30, limit: 1, jobTypes: ["smoke.manual"] }))[0]!;
    const job = await claim("w2");
    const lease = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w2" };
    expect((await heartbeatJobs(db, { leases: [lease], leaseSeconds: 30 })).get(job.id)).toBeInstanceOf(Date);
    await updateJobProgress(db, { lease, progressDone: 1, progressTotal: 2, stage: "halfway" });
    expect(await getJobById(db, job.id, ALL_ORGANIZATIONS)).toMatchObject({
      progressDone: 1,
      progressTotal: 2,
      progressPct: 50,
    });
    await insertJobLog(db, { ...lease, scope: ALL_ORGANIZATIONS, level: "info", message: "hello", payload: { a: 1 } });
    expect(
      (await listJobLogs(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, limit: 10 })).items.map((l) => [
        l.message,
        l.payload,
      ]),
    ).toEqual([["hello", { a: 1 }]]);

    const retry = await completeJobFailure(db, {
      lease,
      kind: "RETRYABLE",
      code: "smoke.retry",
      message: "again",
      retryDelayMs: 1,
    });
    expect(retry.outcome).toBe("RETRY_SCHEDULED");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await claim("w3");
    expect(second).toMatchObject({ id: job.id, attempt: 2 });
    await db.execute(
      sql`update runledger.job_queue set lease_expires_at = now() - interval '1 second' where id = ${job.id}`,
    );
    expect(await reapExpiredLeases(db, { limit: 10, retryDelayMs: 60_000 })).toMatchObject({
      processed: 1,
      retried: 1,
    });

    expect((await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, reason: "smoke" })).status).toBe("CANCELED");
    expect(await requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id })).toMatchObject({
      status: "PENDING",
      runNumber: 2,
      attempt: 0,
    });
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id });
    const page = await listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "smoke.", limit: 2 });
    expect(page.items).toHaveLength(2);
    expect(
      (await listJobs(db, { scope: ALL_ORGANIZATIONS, jobTypeContains: "smoke.", limit: 2, after: page.next! })).items,
    ).toHaveLength(2);

    await upsertJobSchedule(db, {
      name: "smoke.every-second",
      jobType: "smoke.manual",
      cronExpr: "* * * * * *",
      nextFireAt: new Date(Date.now() - 1000),
    });
    const materialized = await materializeDueSchedules(db, { now: new Date(), limit: 10 });
    expect(materialized.failed).toEqual([]);
    expect(materialized.fired).toHaveLength(1);
    await setJobScheduleActive(db, "smoke.every-second", false, ALL_ORGANIZATIONS);
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: materialized.fired[0]!.jobId });
    const second0 = Math.floor(Date.now() / 1000) * 1000;
    const backfilled = await backfillJobSchedule(
      db,
      { name: "smoke.every-second", from: new Date(second0 - 5000), to: new Date(second0 - 2000) },
      ALL_ORGANIZATIONS,
    );
    expect(backfilled.created).toHaveLength(3);
    for (const { jobId } of backfilled.created) await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId });

    // A job key: the insert path (advisory lock in a transaction) and the replace path.
    const keyed = { jobType: "smoke.manual", payload: { v: 1 }, jobKey: { key: "smoke:key" } };
    const firstKeyed = await enqueueJob(db, keyed);
    expect(await enqueueJob(db, { ...keyed, payload: { v: 2 } })).toEqual({ id: firstKeyed.id, created: false });
    expect((await getJobById(db, firstKeyed.id, ALL_ORGANIZATIONS))!.payload).toEqual({ v: 2 });
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: firstKeyed.id });

    const gate = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("smoke.gate", {})
        .step(Step.tryExternal("approve", {}))
        .step(Step.tryJob("after", "smoke.manual", {}).dependsOnSuccess(["approve"]))
        .build(),
    );
    await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: gate.id,
      stepKey: "approve",
      terminalStatus: "SUCCEEDED",
      statusReason: "approved",
    });
    expect((await runSteps(db, gate.id)).map((s) => [s.stepKey, s.status])).toEqual([
      ["approve", "SUCCEEDED"],
      ["after", "ENQUEUED"],
    ]);
    await cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: gate.id, reason: "smoke" });
    expect((await getWorkflowRunById(db, gate.id, ALL_ORGANIZATIONS))?.status).toBe("CANCELED");

    await upsertJobRuntimeConfig(db, { jobType: "smoke.manual", schemaVersion: 1, config: { limit: 5 } });
    expect((await getJobRuntimeConfig(db, "smoke.manual"))?.config).toEqual({ limit: 5 });
    expect(await catalog.syncDefinitionsExact(db, catalog.jobTypes())).toMatchObject({ created: [], disabled: [] });
  });

  it("wraps a PGlite instance it does not own without closing it", async () => {
    const borrowed = await createDb((db as unknown as { $client: PGlite }).$client);
    expect(borrowed.$runledger.kind).toBe("pglite");
    await borrowed.$runledger.close();
    expect((await queryRows<{ one: number }>(db, sql`select 1 as one`))[0]!.one).toBe(1);
  });
});
