import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, newId, RunledgerError, WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobsConfig, RetentionSweeper, RuntimeEvents } from "../../src/runtime/index.ts";
import {
  cancelJob,
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getJobMetrics,
  insertJobLog,
  purgeFinished,
  purgeWorkflowRuns,
  queryRows,
} from "../../src/store/index.ts";
import { stepReleaseLockKey, stepReleaseLockKeySql } from "../../src/store/sql/workflows/locks.ts";
import { claimJobs, completeJobSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob } from "../support/factories.ts";
import { LATER, NO_ORPHANS, orphans, runJobs, runShapes } from "./retention-support.ts";

const { db } = await useTestDatabase();

const A = "00000000-0000-7000-8000-0000000000aa";
const B = "00000000-0000-7000-8000-0000000000bb";

beforeAll(async () => {
  await defineJob(db, "ret.ok");
  await defineJob(db, "ret.dead", { maxAttempts: 1 });
  await defineJob(db, "ret.live");
  await defineJob(db, "ret.step");
  await defineJob(db, "ret.scope");
  await defineJob(db, "ret.metrics");
  await defineJob(db, "ret.wf", { maxAttempts: 1 });
});

const ledgerOf = async (jobId: string) => ({
  job: await countRows(db, "job_queue", sql`id = ${jobId}`),
  attempts: await countRows(db, "job_attempt_log", sql`job_id = ${jobId}`),
  events: await countRows(db, "job_event_log", sql`job_id = ${jobId}`),
  logs: await countRows(db, "job_logs", sql`job_id = ${jobId}`),
  deadLetters: await countRows(db, "job_dead_letters", sql`job_id = ${jobId}`),
});
const GONE = { job: 0, attempts: 0, events: 0, logs: 0, deadLetters: 0 };

function fanOut(jobType: string) {
  const dag = WorkflowDagBuilder.new("ret.flow", {}).job("root", jobType, {});
  for (const leaf of ["a", "b"]) dag.job(leaf, jobType, {}).afterSuccess(leaf, ["root"]);
  return dag.job("join", jobType, {}).afterTerminal("join", ["a", "b"]).build();
}

describe("purgeFinished", () => {
  it("deletes old finished standalone jobs with their whole ledger and nothing live", async () => {
    const done = (await enqueueJob(db, { jobType: "ret.ok" })).id;
    await runJobs(db, "ret.ok");
    await insertJobLog(db, {
      scope: ALL_ORGANIZATIONS,
      jobId: done,
      runNumber: 1,
      attempt: 1,
      level: "info",
      message: "hello",
    });
    const dead = (await enqueueJob(db, { jobType: "ret.dead" })).id;
    await runJobs(db, "ret.dead", "dead");
    await insertJobLog(db, {
      scope: ALL_ORGANIZATIONS,
      jobId: dead,
      runNumber: 1,
      level: "error",
      message: "gone wrong",
    });
    expect((await ledgerOf(dead)).deadLetters).toBe(1);
    expect((await ledgerOf(dead)).attempts).toBe(1);
    const canceled = (await enqueueJob(db, { jobType: "ret.ok" })).id;
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: canceled });
    const pending = (await enqueueJob(db, { jobType: "ret.live" })).id;
    const leased = (await enqueueJob(db, { jobType: "ret.live" })).id;
    const [claimed] = await runClaim("ret.live", 1);
    expect([pending, leased]).toContain(claimed);
    const run = await enqueueWorkflowRun(db, fanOut("ret.step"));

    // Nothing is old enough yet by the database clock.
    expect((await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 3_600_000 })).jobs).toBe(0);

    const events = await countRows(db, "job_event_log", sql`job_id in (${done}, ${dead}, ${canceled})`);
    expect(events).toBeGreaterThanOrEqual(4);
    const purged = await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER, batchSize: 2 });
    expect(purged).toEqual({ jobs: 3, attempts: 1, events, logs: 2, deadLetters: 1, batches: 2 });
    for (const id of [done, dead, canceled]) expect(await ledgerOf(id)).toEqual(GONE);
    for (const id of [pending, leased]) expect(await getJobById(db, id, ALL_ORGANIZATIONS)).not.toBeNull();
    expect((await runShapes(db)).get(run.id)).toMatchObject({ steps: 4, jobs: 1 });
    expect(await orphans(db)).toEqual(NO_ORPHANS);
  });

  it("counts a retention back from the clock it is given: a job just finished goes 8 days on, not 1 minute on", async () => {
    await defineJob(db, "ret.clock");
    const id = (await enqueueJob(db, { jobType: "ret.clock" })).id;
    await runJobs(db, "ret.clock");
    const week = 7 * 86_400_000;
    const purge = (now?: Date) =>
      purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: week, now, statuses: ["SUCCEEDED"] });
    expect((await purge()).jobs).toBe(0);
    expect((await purge(new Date(Date.now() + 60_000))).jobs).toBe(0);
    expect(await getJobById(db, id, ALL_ORGANIZATIONS)).not.toBeNull();
    expect((await purge(new Date(Date.now() + 8 * 86_400_000))).jobs).toBeGreaterThanOrEqual(1);
    expect(await ledgerOf(id)).toEqual(GONE);
  });

  it("counts a workflow run's retention back from the clock it is given", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowDagBuilder.new("ret.clock.flow", {}).job("only", "ret.wf", {}).build(),
    );
    await runJobs(db, "ret.wf");
    const purge = (now?: Date) =>
      purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 7 * 86_400_000, now, statuses: ["SUCCEEDED"] });
    expect((await purge()).runs).toBe(0);
    expect((await runShapes(db)).get(run.id)).toMatchObject({ status: "SUCCEEDED" });
    expect((await purge(new Date(Date.now() + 8 * 86_400_000))).runs).toBeGreaterThanOrEqual(1);
    expect((await runShapes(db)).has(run.id)).toBe(false);
  });

  it("keeps what finished after the cutoff and outcomes it was not asked for", async () => {
    const ok = (await enqueueJob(db, { jobType: "ret.ok" })).id;
    await runJobs(db, "ret.ok");
    const dead = (await enqueueJob(db, { jobType: "ret.dead" })).id;
    await runJobs(db, "ret.dead", "dead");
    const before = new Date(Date.now() - 3_600_000);
    expect((await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: before })).jobs).toBe(0);
    const only = await purgeFinished(db, {
      scope: ALL_ORGANIZATIONS,
      olderThan: 1,
      now: LATER,
      statuses: ["DEAD_LETTERED"],
    });
    expect(only.jobs).toBe(1);
    expect(await ledgerOf(dead)).toEqual(GONE);
    expect((await ledgerOf(ok)).job).toBe(1);
    const limited = await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 1, now: LATER, limit: 1 });
    expect(limited.jobs).toBe(1);
  });

  it("deletes only the scope's organization", async () => {
    const a = (await enqueueJob(db, { jobType: "ret.scope", organizationId: A })).id;
    const b = (await enqueueJob(db, { jobType: "ret.scope", organizationId: B })).id;
    const none = (await enqueueJob(db, { jobType: "ret.scope" })).id;
    await runJobs(db, "ret.scope");
    const purged = await purgeFinished(db, { scope: { organizationId: A }, olderThan: 0, now: LATER });
    expect(purged.jobs).toBe(1);
    expect((await ledgerOf(a)).job).toBe(0);
    expect((await ledgerOf(b)).job).toBe(1);
    expect((await ledgerOf(none)).job).toBe(1);
    // An id that names no organization sees nothing.
    expect((await purgeFinished(db, { scope: { organizationId: "x" }, olderThan: 0, now: LATER })).jobs).toBe(0);
    expect((await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER })).jobs).toBeGreaterThan(1);
  });

  it("refuses unusable input before deleting anything", async () => {
    await enqueueJob(db, { jobType: "ret.ok" });
    await runJobs(db, "ret.ok");
    const before = await countRows(db, "job_queue");
    const bad: [string, Record<string, unknown>][] = [
      ["olderThan", { olderThan: -1 }],
      ["olderThan", { olderThan: new Date("nope") }],
      ["olderThan", { olderThan: "1 day" }],
      ["statuses", { olderThan: 0, statuses: ["PENDING"] }],
      ["statuses", { olderThan: 0, statuses: [] }],
      ["limit", { olderThan: 0, limit: 0 }],
      ["batchSize", { olderThan: 0, batchSize: 10_001 }],
      ["now", { olderThan: 0, now: new Date(Number.NaN) }],
    ];
    for (const [field, input] of bad) {
      const error = await purgeFinished(db, { scope: ALL_ORGANIZATIONS, now: LATER, ...input } as never).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RunledgerError);
      expect(error).toMatchObject({ code: "retention.invalid_input", details: { field } });
    }
    await expect(purgeFinished(db, { olderThan: 0 } as never)).rejects.toMatchObject({ code: "scope.required" });
    await expect(
      purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, statuses: ["RUNNING"] as never }),
    ).rejects.toMatchObject({ code: "retention.invalid_input" });
    expect(await countRows(db, "job_queue")).toBe(before);
  });

  it("leaves counters and metrics consistent: live counts unchanged, deleted successes no longer counted", async () => {
    await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    for (let i = 0; i < 5; i++) await enqueueJob(db, { jobType: "ret.metrics" });
    await runClaim("ret.metrics", 3).then((ids) => Promise.all(ids.slice(0, 2).map((id) => succeed(id))));
    // 2 succeeded, 1 leased, 2 pending.
    const metrics = async () => (await getJobMetrics(db, { scope: ALL_ORGANIZATIONS, jobType: "ret.metrics" }))[0]!;
    const before = await metrics();
    expect(before).toMatchObject({ pendingCount: 2, leasedCount: 1, succeeded24h: 2, windowSeconds: 86_400 });
    const purged = await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    expect(purged.jobs).toBe(2);
    expect(await metrics()).toMatchObject({ pendingCount: 2, leasedCount: 1, succeeded24h: 0 });
  });
});

describe("purgeWorkflowRuns", () => {
  it("deletes terminal runs whole and never a live run or its jobs", async () => {
    await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    const done = await enqueueWorkflowRun(db, fanOut("ret.wf"));
    await runJobs(db, "ret.wf"); // root
    await runJobs(db, "ret.wf", "dead"); // a, b fail; join runs after them
    await runJobs(db, "ret.wf");
    const live = await enqueueWorkflowRun(db, fanOut("ret.wf"));
    await runJobs(db, "ret.wf"); // live's root succeeded; its leaves are pending
    const shapes = await runShapes(db);
    expect(shapes.get(done.id)).toMatchObject({ status: "COMPLETED_WITH_ERRORS", steps: 4, edges: 4, jobs: 4 });
    expect(shapes.get(live.id)).toMatchObject({ status: "RUNNING", jobs: 3 });

    // Standalone purges never touch a run's jobs, finished or not.
    expect((await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER })).jobs).toBe(0);
    expect((await purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 3_600_000 })).runs).toBe(0);
    expect(
      (await purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER, statuses: ["SUCCEEDED"] }))
        .runs,
    ).toBe(0);

    const jobsBefore = await countRows(db, "job_queue");
    const purged = await purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    expect(purged).toMatchObject({ runs: 1, steps: 4, edges: 4, jobs: 4, attempts: 2, deadLetters: 2 });
    expect(await countRows(db, "job_queue")).toBe(jobsBefore - 4);
    const after = await runShapes(db);
    expect(after.has(done.id)).toBe(false);
    expect(after.get(live.id)).toEqual(shapes.get(live.id));
    expect(await orphans(db)).toEqual(NO_ORPHANS);
  });

  it("deletes only the scope's runs", async () => {
    const flow = (org: string) => ({ ...fanOut("ret.wf"), organizationId: org });
    const a = await enqueueWorkflowRun(db, flow(A));
    const b = await enqueueWorkflowRun(db, flow(B));
    for (let i = 0; i < 3; i++) await runJobs(db, "ret.wf");
    const shapes = await runShapes(db);
    expect(shapes.get(a.id)?.status).toBe("SUCCEEDED");
    expect(shapes.get(b.id)?.status).toBe("SUCCEEDED");
    expect((await purgeWorkflowRuns(db, { scope: { organizationId: B }, olderThan: 0, now: LATER })).runs).toBe(1);
    const after = await runShapes(db);
    expect(after.has(b.id)).toBe(false);
    expect(after.get(a.id)).toEqual(shapes.get(a.id));
  });
});

describe("RetentionSweeper", () => {
  it("applies each outcome's retention and reports what it deleted", async () => {
    await purgeWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    await purgeFinished(db, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
    const ok = (await enqueueJob(db, { jobType: "ret.ok" })).id;
    await runJobs(db, "ret.ok");
    const dead = (await enqueueJob(db, { jobType: "ret.dead" })).id;
    await runJobs(db, "ret.dead", "dead");
    const run = await enqueueWorkflowRun(db, fanOut("ret.wf"));
    for (let i = 0; i < 3; i++) await runJobs(db, "ret.wf");
    const hour = 3600;
    const config = JobsConfig.from({
      retentionSucceededSeconds: hour,
      retentionDeadLetteredSeconds: 0, // kept forever
      retentionWorkflowRunSeconds: 48 * hour,
    });
    const events = new RuntimeEvents();
    const seen: unknown[] = [];
    events.on("retention:purged", (e) => seen.push(e));
    const in2h = new Date(Date.now() + 2 * hour * 1000);
    const first = await new RetentionSweeper({ db, config, events, now: () => in2h }).runOnce();
    expect(first.jobs).toBe(1);
    expect(first.workflowRuns).toBe(0);
    expect((await ledgerOf(ok)).job).toBe(0);
    expect((await ledgerOf(dead)).job).toBe(1);
    expect(seen).toEqual([first]);
    const in3d = new Date(Date.now() + 72 * hour * 1000);
    const second = await new RetentionSweeper({ db, config, events, now: () => in3d }).runOnce();
    expect(second).toMatchObject({ jobs: 0, workflowRuns: 1 });
    expect((await runShapes(db)).has(run.id)).toBe(false);
    expect((await ledgerOf(dead)).job).toBe(1);
  });
});

async function runClaim(jobType: string, limit: number): Promise<string[]> {
  const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 600, limit, jobTypes: [jobType] });
  return jobs.map((j) => j.id);
}

async function succeed(jobId: string): Promise<void> {
  await completeJobSuccess(db, { lease: { jobId, runNumber: 1, attempt: 1, workerId: "w" } });
}

describe("release lock keys", () => {
  it("are computed alike by the database and by TypeScript", async () => {
    const ids = [newId(), newId(), "ffffffff-ffff-7fff-bfff-ffffffffffff", "00000000-0000-7000-8000-000000000000"];
    for (const id of ids) {
      const [row] = await queryRows<{ key: string }>(
        db,
        sql`select ${stepReleaseLockKeySql(sql`${id}::uuid`)}::text as key`,
      );
      expect(row!.key).toBe(stepReleaseLockKey(id));
    }
  });
});

describe("inside an application's transaction", () => {
  it("joins it and leaves its planner settings as they were", async () => {
    const id = (await enqueueJob(db, { jobType: "ret.ok" })).id;
    await runJobs(db, "ret.ok");
    const [before] = await queryRows<{ seqscan: string; bitmapscan: string; jit: string }>(
      db,
      sql`select current_setting('enable_seqscan') as seqscan, current_setting('enable_bitmapscan') as bitmapscan,
        current_setting('jit') as jit`,
    );
    expect(before!.seqscan).toBe("on");
    await expect(
      db.transaction(async (tx) => {
        const purged = await purgeFinished(tx, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER });
        const [row] = await queryRows<{ seqscan: string; bitmapscan: string; jit: string }>(
          tx,
          sql`select current_setting('enable_seqscan') as seqscan, current_setting('enable_bitmapscan') as bitmapscan,
            current_setting('jit') as jit`,
        );
        expect(purged.jobs).toBeGreaterThanOrEqual(1);
        expect(row).toEqual(before);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    // Rolled back with the application's transaction.
    expect((await ledgerOf(id)).job).toBe(1);
  });
});
