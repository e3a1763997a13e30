import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  cancelJob,
  type Executor,
  enqueueJob,
  getJobById,
  getJobMetrics,
  type JobRecord,
  listJobAttempts,
  listJobEvents,
  listJobs,
  queryRows,
  requeueJob,
  schema,
} from "../../src/store/index.ts";
import {
  claimJobs,
  claimRunnableJobs,
  completeJobFailure,
  completeJobSuccess,
  completeJobsSuccess,
  heartbeatJob,
  heartbeatJobs,
  type LeaseIdentity,
  reapExpiredLeases,
  releaseUnstartedJobClaim,
  returnUnstartedClaims,
  updateJobProgress,
} from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, eventTypes, expireLease } from "../support/factories.ts";

const { db } = await useTestDatabase();
const ORG_A = "0190f0a0-0000-7000-8000-00000000000a";
const ORG_B = "0190f0a0-0000-7000-8000-00000000000b";
let typeCounter = 0;

beforeAll(async () => {
  await defineJob(db, "work", { maxAttempts: 3 });
});

/** A fresh job type with one job in it, claimed by `worker`. */
async function claimedJob(
  options: {
    maxAttempts?: number;
    worker?: string;
    prestart?: boolean;
    markRunning?: boolean;
    organizationId?: string;
  } = {},
): Promise<{ job: JobRecord; lease: LeaseIdentity }> {
  const jobType = `lifecycle.${++typeCounter}`;
  await defineJob(db, jobType, { maxAttempts: options.maxAttempts ?? 3 });
  await enqueueJob(db, { jobType, payload: { n: typeCounter }, organizationId: options.organizationId });
  const [job] = await claimJobs(db, {
    workerId: options.worker ?? "worker-1",
    leaseSeconds: 60,
    limit: 1,
    jobTypes: [jobType],
    markRunning: options.markRunning ?? true,
    prestart: options.prestart,
  });
  return {
    job: job!,
    lease: { jobId: job!.id, runNumber: job!.runNumber, attempt: job!.attempt, workerId: job!.workerId! },
  };
}

async function reload(id: string): Promise<JobRecord> {
  return (await getJobById(db, id, ALL_ORGANIZATIONS))!;
}

async function attempts(exec: Executor, jobId: string) {
  return exec
    .select()
    .from(schema.jobAttempts)
    .where(eq(schema.jobAttempts.jobId, jobId))
    .orderBy(schema.jobAttempts.attempt);
}

describe("claim", () => {
  it("leases by priority, then due time, then age, writing an attempt and a LEASED event", async () => {
    await defineJob(db, "order.test");
    const low = await enqueueJob(db, { jobType: "order.test", priority: 1 });
    const high = await enqueueJob(db, { jobType: "order.test", priority: 9 });
    const later = await enqueueJob(db, {
      jobType: "order.test",
      priority: 9,
      nextRunAt: new Date(Date.now() + 60_000),
    });
    const claimed = await claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 5, jobTypes: ["order.test"] });
    expect(claimed.map((j) => j.id)).toEqual([high.id, low.id]);
    expect(claimed.map((j) => j.id)).not.toContain(later.id);
    const job = claimed[0]!;
    expect(job).toMatchObject({ status: "LEASED", attempt: 1, workerId: "w", stage: "queued" });
    expect(job.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 20_000);
    expect(await attempts(db, job.id)).toMatchObject([
      { attempt: 1, workerId: "w", claimOrigin: "DIRECT", finishedAt: null },
    ]);
    expect(await eventTypes(db, job.id)).toEqual(["ENQUEUED", "LEASED"]);
  });

  it("claims nothing for an empty type list, and refuses bad arguments", async () => {
    expect(await claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 5, jobTypes: [] })).toEqual([]);
    await expect(claimJobs(db, { workerId: "w", leaseSeconds: 0, limit: 5 })).rejects.toMatchObject({
      code: "job.invalid_lease_duration",
    });
    await expect(claimJobs(db, { workerId: " ", leaseSeconds: 5, limit: 5 })).rejects.toMatchObject({
      code: "job.invalid_worker_id",
    });
  });

  it("still claims queued jobs of a disabled type", async () => {
    await defineJob(db, "paused.type");
    const { id } = await enqueueJob(db, { jobType: "paused.type" });
    await defineJob(db, "paused.type", { isEnabled: false });
    const [job] = await claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 1, jobTypes: ["paused.type"] });
    expect(job?.id).toBe(id);
  });
});

describe("a held lease", () => {
  it("heartbeats, reports progress and succeeds with the events the spec lists", async () => {
    const { job, lease } = await claimedJob();
    expect(job.stage).toBe("running");
    const { leaseExpiresAt } = await heartbeatJob(db, { lease, leaseSeconds: 120 });
    expect(leaseExpiresAt.getTime()).toBeGreaterThan(Date.now() + 100_000);
    await updateJobProgress(db, { lease, progressDone: 2, progressTotal: 8, checkpoint: { page: 2 } });
    expect(await reload(job.id)).toMatchObject({
      progressDone: 2,
      progressTotal: 8,
      progressPct: 25,
      checkpoint: { page: 2 },
    });
    await completeJobSuccess(db, { lease, progressDone: 8 });
    const done = await reload(job.id);
    expect(done).toMatchObject({
      status: "SUCCEEDED",
      stage: "completed",
      progressDone: 8,
      progressTotal: 8,
      workerId: null,
    });
    expect(done.leaseExpiresAt).toBeNull();
    expect(done.finishedAt).not.toBeNull();
    expect(await eventTypes(db, job.id)).toEqual(["ENQUEUED", "LEASED", "HEARTBEAT", "PROGRESS", "SUCCEEDED"]);
    expect(await attempts(db, job.id)).toMatchObject([{ outcome: null, errorCode: null }]);
    expect((await attempts(db, job.id))[0]!.finishedAt).not.toBeNull();
  });

  it("refuses a success stage other than completed and invalid progress, changing nothing", async () => {
    const { job, lease } = await claimedJob();
    await expect(completeJobSuccess(db, { lease, stage: "running" })).rejects.toMatchObject({
      code: "job.invalid_success_stage",
    });
    await expect(updateJobProgress(db, { lease, progressDone: 5, progressTotal: 2 })).rejects.toMatchObject({
      code: "job.invalid_progress",
    });
    await expect(updateJobProgress(db, { lease, progressDone: -1 })).rejects.toMatchObject({
      code: "job.invalid_progress",
    });
    await updateJobProgress(db, { lease, progressTotal: 3 });
    await expect(updateJobProgress(db, { lease, progressDone: 4 })).rejects.toMatchObject({
      code: "job.invalid_progress",
    });
    expect(await reload(job.id)).toMatchObject({ status: "LEASED", progressDone: null, progressTotal: 3 });
  });

  it("completes many successes in one call and reports each lost lease on its own", async () => {
    const a = await claimedJob();
    const b = await claimedJob();
    const stale = { ...b.lease, workerId: "someone-else" };
    const results = await completeJobsSuccess(db, [{ lease: a.lease }, { lease: stale }]);
    expect(results[0]).toEqual({ ok: true });
    expect(results[1]).toMatchObject({ ok: false, error: { code: "job.lease_owner_mismatch" } });
    expect((await reload(a.job.id)).status).toBe("SUCCEEDED");
    expect((await reload(b.job.id)).status).toBe("LEASED");
  });
});

describe("an expired or lost lease", () => {
  it("cannot heartbeat, report progress, succeed or fail, and nothing changes", async () => {
    const { job, lease } = await claimedJob();
    await expireLease(db, job.id);
    const before = await reload(job.id);
    const writes = [
      () => heartbeatJob(db, { lease, leaseSeconds: 30 }),
      () => updateJobProgress(db, { lease, progressDone: 1 }),
      () => completeJobSuccess(db, { lease }),
      () => completeJobFailure(db, { lease, kind: "RETRYABLE", code: "x", message: "x", retryDelayMs: 1000 }),
    ];
    for (const write of writes) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "job.lease_owner_mismatch", category: "Forbidden" });
      expect((error as Error).message).toBe("Job lease is not currently held by this worker.");
    }
    expect(await reload(job.id)).toEqual(before);
    expect(await eventTypes(db, job.id)).toEqual(["ENQUEUED", "LEASED"]);
  });

  it("is fenced by run, attempt and worker", async () => {
    const { lease } = await claimedJob();
    for (const stale of [
      { ...lease, workerId: "other" },
      { ...lease, attempt: lease.attempt + 1 },
      { ...lease, runNumber: lease.runNumber + 1 },
    ]) {
      await expect(heartbeatJob(db, { lease: stale, leaseSeconds: 30 })).rejects.toMatchObject({
        code: "job.lease_owner_mismatch",
      });
    }
  });
});

describe("failure", () => {
  it("schedules a retry after the given delay, then dead-letters when attempts run out", async () => {
    const { job, lease } = await claimedJob({ maxAttempts: 2 });
    await updateJobProgress(db, { lease, checkpoint: { cursor: 7 } });
    const before = Date.now();
    const outcome = await completeJobFailure(db, {
      lease,
      kind: "RETRYABLE",
      code: "net.down",
      message: "boom",
      retryDelayMs: 45_000,
    });
    expect(outcome.outcome).toBe("RETRY_SCHEDULED");
    const retried = await reload(job.id);
    expect(retried).toMatchObject({
      status: "PENDING",
      statusReason: "RETRYABLE",
      lastErrorCode: "net.down",
      workerId: null,
    });
    expect(retried.nextRunAt.getTime()).toBeGreaterThanOrEqual(before + 44_000);
    expect(retried.nextRunAt.getTime()).toBeLessThan(Date.now() + 46_000);
    expect(await attempts(db, job.id)).toMatchObject([
      { outcome: "RETRYABLE", errorCode: "net.down", retryDelayMs: 45_000 },
    ]);

    // Not claimable before its time; make it due and claim attempt 2.
    expect(await claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 1, jobTypes: [job.jobType] })).toEqual([]);
    await db
      .update(schema.jobQueue)
      .set({ nextRunAt: new Date(Date.now() - 1000) })
      .where(eq(schema.jobQueue.id, job.id));
    const [second] = await claimJobs(db, { workerId: "w2", leaseSeconds: 30, limit: 1, jobTypes: [job.jobType] });
    expect(second).toMatchObject({ attempt: 2, checkpoint: { cursor: 7 } });
    const lease2 = { jobId: job.id, runNumber: 1, attempt: 2, workerId: "w2" };
    expect(
      await completeJobFailure(db, {
        lease: lease2,
        kind: "RETRYABLE",
        code: "net.down",
        message: "again",
        retryDelayMs: 1000,
      }),
    ).toEqual({
      outcome: "DEAD_LETTERED",
    });
    expect(await reload(job.id)).toMatchObject({
      status: "DEAD_LETTERED",
      statusReason: "RETRYABLE",
      lastErrorMessage: "again",
    });
    expect(await eventTypes(db, job.id)).toEqual([
      "ENQUEUED",
      "LEASED",
      "FAILED",
      "RETRY_SCHEDULED",
      "LEASED",
      "FAILED",
      "DEAD_LETTERED",
    ]);
    const story = (await listJobAttempts(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, limit: 10 })).items;
    expect(story).toMatchObject([
      {
        runNumber: 1,
        attempt: 1,
        workerId: lease.workerId,
        outcome: "RETRYABLE",
        errorMessage: "boom",
        retryDelayMs: 45_000,
      },
      { runNumber: 1, attempt: 2, workerId: "w2", outcome: "RETRYABLE", errorMessage: "again", retryDelayMs: null },
    ]);
    expect(story.every((a) => a.finishedAt !== null && a.leasedAt <= a.finishedAt)).toBe(true);
    expect(
      (
        await listJobAttempts(db, {
          scope: ALL_ORGANIZATIONS,
          jobId: job.id,
          limit: 10,
          after: { runNumber: 1, attempt: 1 },
        })
      ).items,
    ).toMatchObject([{ attempt: 2 }]);
    await expect(
      listJobAttempts(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, limit: 10, after: { runNumber: 0, attempt: 1 } }),
    ).rejects.toMatchObject({ code: "job.invalid_pagination" });
    const [dead] = await db.select().from(schema.jobDeadLetters).where(eq(schema.jobDeadLetters.jobId, job.id));
    expect(dead).toMatchObject({
      attempt: 2,
      runNumber: 1,
      errorCode: "net.down",
      payloadSnapshot: job.payload,
      checkpointSnapshot: { cursor: 7 },
    });
  });

  it.each(["TERMINAL", "PANICKED"] as const)("dead-letters a %s failure at once", async (kind) => {
    const { job, lease } = await claimedJob({ maxAttempts: 5 });
    expect(await completeJobFailure(db, { lease, kind, code: "bad", message: "no" })).toEqual({
      outcome: "DEAD_LETTERED",
    });
    expect(await reload(job.id)).toMatchObject({ status: "DEAD_LETTERED", statusReason: kind, stage: "failed" });
  });

  it("refuses a retry without a positive delay and changes nothing", async () => {
    const { job, lease } = await claimedJob();
    await expect(completeJobFailure(db, { lease, kind: "RETRYABLE", code: "x", message: "x" })).rejects.toMatchObject({
      code: "job.invalid_retry_delay",
      message: "Job retry delay must be positive.",
    });
    expect((await reload(job.id)).status).toBe("LEASED");
  });
});

describe("the lease a claim hands out", () => {
  async function claimRunnable(jobType: string, options: { prestart?: boolean } = {}) {
    const [job] = await claimRunnableJobs(db, {
      workerId: "runner",
      leaseSeconds: 60,
      limit: 1,
      jobTypes: [jobType],
      markRunning: options.prestart !== true,
      prestart: options.prestart,
    });
    return job!;
  }

  it("is passed unchanged, as `lease` (or `leases`), to every lease-fenced write", async () => {
    const jobType = `lifecycle.${++typeCounter}`;
    await defineJob(db, jobType, { maxAttempts: 5 });
    const { id } = await enqueueJob(db, { jobType });

    let job = await claimRunnable(jobType);
    expect((await heartbeatJob(db, { lease: job, leaseSeconds: 90 })).leaseExpiresAt).toBeInstanceOf(Date);
    expect([...(await heartbeatJobs(db, { leases: [job], leaseSeconds: 90 })).keys()]).toEqual([id]);
    await updateJobProgress(db, { lease: job, progressDone: 1, progressTotal: 4 });
    const retry = await completeJobFailure(db, {
      lease: job,
      kind: "RETRYABLE",
      code: "x",
      message: "x",
      retryDelayMs: 1,
    });
    expect(retry.outcome).toBe("RETRY_SCHEDULED");
    await db.execute(sql`update runledger.job_queue set next_run_at = now() where id = ${id}`);

    job = await claimRunnable(jobType, { prestart: true });
    await releaseUnstartedJobClaim(db, { lease: job, reason: "handed back" });
    job = await claimRunnable(jobType, { prestart: true });
    expect(await returnUnstartedClaims(db, { leases: [job], reason: "shutting down" })).toEqual([id]);

    job = await claimRunnable(jobType);
    await completeJobSuccess(db, { lease: job, progressDone: 4 });
    expect(await reload(id)).toMatchObject({ status: "SUCCEEDED", attempt: 2, progressDone: 4, progressTotal: 4 });
  });

  it("is required: a write without one is refused as a lease mismatch and changes nothing", async () => {
    const { job } = await claimedJob();
    const before = await reload(job.id);
    const noLease = { lease: undefined as never };
    const writes = {
      heartbeatJob: () => heartbeatJob(db, { ...noLease, leaseSeconds: 30 }),
      updateJobProgress: () => updateJobProgress(db, { ...noLease, progressDone: 1 }),
      completeJobSuccess: () => completeJobSuccess(db, noLease),
      completeJobFailure: () => completeJobFailure(db, { ...noLease, kind: "TERMINAL", code: "x", message: "x" }),
      releaseUnstartedJobClaim: () => releaseUnstartedJobClaim(db, { ...noLease, reason: "x" }),
    };
    for (const [name, write] of Object.entries(writes)) {
      const error = await write().catch((e: unknown) => e);
      expect(error, name).toMatchObject({ code: "job.lease_owner_mismatch" });
    }
    expect(await reload(job.id)).toEqual(before);
  });
});

describe("unstarted prestart claims", () => {
  it("are handed back without consuming an attempt", async () => {
    const { job, lease } = await claimedJob({ prestart: true, markRunning: false });
    await releaseUnstartedJobClaim(db, { lease, reason: "RUNNING_PROGRESS_PERSIST_FAILED", retryDelayMs: 1000 });
    expect(await reload(job.id)).toMatchObject({ status: "PENDING", attempt: 0, startedAt: null, workerId: null });
    expect(await attempts(db, job.id)).toEqual([]);
    expect(await eventTypes(db, job.id)).toEqual(["ENQUEUED", "LEASED", "REQUEUED"]);
  });

  it("cannot be released once running was persisted, nor by another worker", async () => {
    const { lease } = await claimedJob({ prestart: true, markRunning: false });
    await expect(
      releaseUnstartedJobClaim(db, { lease: { ...lease, workerId: "intruder" }, reason: "x" }),
    ).rejects.toMatchObject({ code: "job.lease_owner_mismatch" });
    await updateJobProgress(db, { lease, stage: "running" });
    await expect(releaseUnstartedJobClaim(db, { lease, reason: "x" })).rejects.toMatchObject({
      code: "job.unstarted_claim_release_not_applicable",
    });
  });
});

describe("reaper", () => {
  it("retries, refunds and dead-letters expired leases", async () => {
    await reapExpiredLeases(db, { limit: 1000, retryDelayMs: 60_000 }); // leftovers of earlier tests
    const retry = await claimedJob({ maxAttempts: 3 });
    const refund = await claimedJob({ prestart: true, markRunning: false });
    const dead = await claimedJob({ maxAttempts: 1 });
    const alive = await claimedJob();
    for (const { job } of [retry, refund, dead]) await expireLease(db, job.id);

    const result = await reapExpiredLeases(db, { limit: 100, retryDelayMs: 5000 });
    expect(result).toMatchObject({ processed: 3, released: 1, retried: 1, deferred: 0 });
    expect(result.deadLettered).toMatchObject([
      { jobId: dead.job.id, attempt: 1, maxAttempts: 1, payload: dead.job.payload },
    ]);

    expect(await reload(retry.job.id)).toMatchObject({
      status: "PENDING",
      lastErrorCode: "job.lease_expired",
      attempt: 1,
    });
    expect(await attempts(db, retry.job.id)).toMatchObject([
      { outcome: "LEASE_EXPIRED", errorMessage: "Job lease expired before completion.", retryDelayMs: 5000 },
    ]);
    expect(await reload(refund.job.id)).toMatchObject({ status: "PENDING", attempt: 0 });
    expect(await reload(dead.job.id)).toMatchObject({ status: "DEAD_LETTERED", statusReason: "LEASE_EXPIRED" });
    expect((await reload(alive.job.id)).status).toBe("LEASED");
    expect(await reapExpiredLeases(db, { limit: 100, retryDelayMs: 5000 })).toMatchObject({ processed: 0 });
    await expect(reapExpiredLeases(db, { limit: 10, retryDelayMs: 0 })).rejects.toMatchObject({
      code: "job.invalid_retry_delay",
    });
  });

  it("skips a poison row without blocking the batch", async () => {
    const poison = await claimedJob({ maxAttempts: 1 });
    const healthy = await claimedJob({ maxAttempts: 3 });
    await expireLease(db, poison.job.id);
    await expireLease(db, healthy.job.id);
    // A dead letter for the poison job whose job_type points at a definition that will refuse
    // the upsert: make the dead-letter insert fail with a trigger.
    await db.execute(sql`
      create function runledger_test_poison() returns trigger language plpgsql as $$
      begin if new.job_id = ${sql.raw(`'${poison.job.id}'`)} then raise exception 'poisoned'; end if; return new; end $$`);
    await db.execute(
      sql`create trigger poison before insert on runledger.job_dead_letters for each row execute function runledger_test_poison()`,
    );
    try {
      const result = await reapExpiredLeases(db, { limit: 100, retryDelayMs: 60_000 });
      expect(result).toMatchObject({ processed: 1, retried: 1, deferred: 1 });
      const poisoned = await reload(poison.job.id);
      expect(poisoned.status).toBe("LEASED");
      expect(poisoned.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
      expect((await reload(healthy.job.id)).status).toBe("PENDING");
    } finally {
      await db.execute(sql`drop trigger poison on runledger.job_dead_letters`);
      await db.execute(sql`drop function runledger_test_poison`);
    }
  });
});

describe("cancel and requeue", () => {
  it("cancels a leased job, fencing its worker out", async () => {
    const { job, lease } = await claimedJob();
    const canceled = await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, reason: "operator" });
    expect(canceled).toMatchObject({ status: "CANCELED", statusReason: "operator", workerId: null });
    await expect(completeJobSuccess(db, { lease })).rejects.toMatchObject({ code: "job.lease_owner_mismatch" });
    await expect(cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id })).rejects.toMatchObject({
      code: "job.invalid_state_transition",
    });
    expect(await eventTypes(db, job.id)).toEqual(["ENQUEUED", "LEASED", "CANCELED"]);
  });

  it("requeues a dead-lettered job as run 2, which runs again", async () => {
    const { job, lease } = await claimedJob();
    await completeJobFailure(db, { lease, kind: "TERMINAL", code: "bad", message: "bad" });
    await expect(requeueJob(db, { jobId: job.id, scope: { organizationId: ORG_B } })).rejects.toMatchObject({
      code: "job.not_found",
    });
    const requeued = await requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id });
    expect(requeued).toMatchObject({ status: "PENDING", runNumber: 2, attempt: 0, stage: "queued", checkpoint: null });
    const [again] = await claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 1, jobTypes: [job.jobType] });
    expect(again).toMatchObject({ id: job.id, runNumber: 2, attempt: 1 });
    await completeJobSuccess(db, { lease: { jobId: job.id, runNumber: 2, attempt: 1, workerId: "w" } });
    expect((await reload(job.id)).status).toBe("SUCCEEDED");
    expect(await eventTypes(db, job.id)).toEqual([
      "ENQUEUED",
      "LEASED",
      "FAILED",
      "DEAD_LETTERED",
      "REQUEUED",
      "LEASED",
      "SUCCEEDED",
    ]);
    await expect(requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: job.id, reason: " " })).rejects.toMatchObject({
      code: "job.invalid_state_transition",
    });
  });

  it("refuses to requeue a pending job", async () => {
    await defineJob(db, "still.pending");
    const { id } = await enqueueJob(db, { jobType: "still.pending" });
    await expect(requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: id })).rejects.toMatchObject({
      code: "job.invalid_state_transition",
    });
    await expect(
      cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: "0190f0a0-0000-7000-8000-0000000000ff" }),
    ).rejects.toMatchObject({
      code: "job.not_found",
    });
  });
});

describe("organization-scoped reads", () => {
  it("never return another organization's rows", async () => {
    const a = await claimedJob({ organizationId: ORG_A });
    const b = await claimedJob({ organizationId: ORG_B });
    expect(await getJobById(db, a.job.id, { organizationId: ORG_B })).toBeNull();
    expect(await getJobById(db, a.job.id, { organizationId: ORG_A })).toMatchObject({ id: a.job.id });
    expect((await listJobEvents(db, { jobId: a.job.id, scope: { organizationId: ORG_B }, limit: 100 })).items).toEqual(
      [],
    );
    expect(
      (await listJobEvents(db, { jobId: a.job.id, scope: { organizationId: ORG_A }, limit: 100 })).items.length,
    ).toBe(2);
    await expect(cancelJob(db, { jobId: b.job.id, scope: { organizationId: ORG_A } })).rejects.toMatchObject({
      code: "job.not_found",
    });

    const seen: string[] = [];
    let page = await listJobs(db, { scope: { organizationId: ORG_A }, limit: 1 });
    for (;;) {
      seen.push(...page.items.map((j) => j.organizationId ?? "none"));
      if (page.next === null) break;
      page = await listJobs(db, { scope: { organizationId: ORG_A }, limit: 1, after: page.next });
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([ORG_A]));
  });

  it("pages through every job exactly once, newest first", async () => {
    const all = await listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 1000 });
    const ids: string[] = [];
    let page = await listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 7 });
    for (;;) {
      ids.push(...page.items.map((j) => j.id));
      if (page.next === null) break;
      page = await listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 7, after: page.next });
    }
    expect(ids).toEqual(all.items.map((j) => j.id));
    await expect(listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 0 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
    await expect(listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 1001 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });

  it("reports metrics per definition, zero-filled", async () => {
    await defineJob(db, "metrics.idle");
    const metrics = await getJobMetrics(db, { scope: ALL_ORGANIZATIONS });
    expect(metrics.find((m) => m.jobType === "metrics.idle")).toMatchObject({ pendingCount: 0, succeeded24h: 0 });
    const work = await getJobMetrics(db, { scope: { organizationId: ORG_A } });
    expect(work.length).toBe(metrics.length);
    const rows = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger.job_metrics_rollup`);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });
});
