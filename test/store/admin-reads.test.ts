import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, newId } from "../../src/core/index.ts";
import {
  cancelJob,
  countJobsByStatus,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  findStuckLeases,
  getJobThroughput,
  getJobWorkflowStep,
  getOldestDueJob,
  listDeadLetters,
  listLeasedJobs,
  listRecentWorkers,
  requeueJob,
  searchJobsAndRuns,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobSuccess } from "../../src/store/worker.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase();

beforeAll(async () => {
  await defineJob(db, "admin.a", { maxAttempts: 1 });
  await defineJob(db, "admin.b", { maxAttempts: 3 });
});

/** Claim `n` jobs of `jobType` in `org` for `workerId`. */
async function claim(jobType: string, workerId: string, n = 1) {
  const claimed = await claimJobs(db, { workerId, leaseSeconds: 60, limit: n, jobTypes: [jobType] });
  return claimed.map((job) => ({ jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId }));
}

/** Dead-letter every pending job of `jobType` (maxAttempts 1). */
async function deadLetterAll(jobType: string, code = "boom") {
  for (const lease of await claim(jobType, "w-dead", 1000)) {
    await completeJobFailure(db, { lease, kind: "TERMINAL", code, message: "failed" });
  }
}

describe("countJobsByStatus", () => {
  it("counts pending, leased and dead-lettered jobs per status and type, exact under the cap", async () => {
    const org = newId();
    await enqueueJobs(db, [
      ...Array.from({ length: 4 }, () => ({ jobType: "admin.a", organizationId: org })),
      ...Array.from({ length: 2 }, () => ({ jobType: "admin.b", organizationId: org })),
    ]);
    await enqueueJob(db, { jobType: "admin.a", organizationId: newId() }); // another organization
    const counts = await countJobsByStatus(db, { scope: { organizationId: org } });
    expect(counts.byStatus).toEqual({
      PENDING: { count: 6, capped: false },
      LEASED: { count: 0, capped: false },
      DEAD_LETTERED: { count: 0, capped: false },
    });
    expect(counts.byType).toEqual([
      { jobType: "admin.a", status: "PENDING", count: 4, capped: false },
      { jobType: "admin.b", status: "PENDING", count: 2, capped: false },
    ]);
  });

  it("stops reading at the cap and says so; one organization's figure is then a lower bound", async () => {
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 5 }, () => ({ jobType: "admin.b", organizationId: org })),
    );
    const everyone = await countJobsByStatus(db, { scope: ALL_ORGANIZATIONS, cap: 3 });
    expect(everyone.byStatus.PENDING).toEqual({ count: 3, capped: true });
    expect(everyone.byType.filter((t) => t.status === "PENDING").every((t) => t.capped)).toBe(true);
    // The first 4 pending jobs read belong to earlier tests: this organization's newer ones are not among them.
    expect((await countJobsByStatus(db, { scope: { organizationId: org }, cap: 3 })).byStatus.PENDING).toEqual({
      count: 0,
      capped: true,
    });
    expect((await countJobsByStatus(db, { scope: { organizationId: org }, cap: 1000 })).byStatus.PENDING).toEqual({
      count: 5,
      capped: false,
    });
  });

  it("counts a dead-lettered job until it is requeued", async () => {
    await defineJob(db, "admin.dead", { maxAttempts: 1 });
    const org = newId();
    const [first] = await enqueueJobs(db, [
      { jobType: "admin.dead", organizationId: org },
      { jobType: "admin.dead", organizationId: org },
    ]);
    await deadLetterAll("admin.dead");
    expect((await countJobsByStatus(db, { scope: { organizationId: org } })).byStatus.DEAD_LETTERED.count).toBe(2);
    await requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: first!.id });
    const after = await countJobsByStatus(db, { scope: { organizationId: org } });
    expect(after.byStatus.DEAD_LETTERED.count).toBe(1);
    expect(after.byStatus.PENDING.count).toBe(1);
  });

  it("refuses a cap it cannot honour and a missing scope", async () => {
    await expect(countJobsByStatus(db, { scope: ALL_ORGANIZATIONS, cap: 0 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
    // A scope is required: none (from an untyped caller) is refused before anything is read.
    await expect(countJobsByStatus(db, {} as never)).rejects.toMatchObject({ code: "scope.required" });
    await expect(listDeadLetters(db, { limit: 10 } as never)).rejects.toMatchObject({ code: "scope.required" });
    // An organization id that names none sees nothing.
    expect((await countJobsByStatus(db, { scope: { organizationId: "x" } })).byStatus.PENDING.count).toBe(0);
  });
});

describe("getJobThroughput", () => {
  it("buckets successes, failures, dead letters and cancels by minute, capped per kind", async () => {
    await defineJob(db, "admin.tp", { maxAttempts: 2 });
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 6 }, () => ({ jobType: "admin.tp", organizationId: org })),
    );
    const leases = await claim("admin.tp", "w-tp", 4);
    for (const lease of leases.slice(0, 3)) await completeJobSuccess(db, { lease });
    await completeJobFailure(db, {
      lease: leases[3]!,
      kind: "RETRYABLE",
      code: "again",
      message: "x",
      retryDelayMs: 60_000,
    });
    const pending = await db.execute(
      sql`select id from runledger.job_queue where organization_id = ${org} and status = 'PENDING' and attempt = 0 limit 1`,
    );
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: (pending as unknown as { id: string }[])[0]!.id });

    const throughput = await getJobThroughput(db, { scope: { organizationId: org }, minutes: 5 });
    expect(throughput.minutes).toHaveLength(5);
    expect(throughput.totals).toEqual({
      succeeded: { count: 3, capped: false },
      failed: { count: 1, capped: false },
      deadLettered: { count: 0, capped: false },
      canceled: { count: 1, capped: false },
    });
    const last = throughput.minutes.at(-1)!;
    expect(last).toMatchObject({ succeeded: 3, failed: 1, canceled: 1 });
    expect(throughput.minutes.slice(0, -1).every((m) => m.succeeded === 0)).toBe(true);
    expect(throughput.countedFrom.succeeded).toBeNull();

    // Successes are counted among the newest cap / 2 + 1 jobs: with cap 8, the 5 newest of the 6,
    // which leave out one of the 3 that succeeded (claims take the oldest first).
    const capped = await getJobThroughput(db, { scope: { organizationId: org }, minutes: 5, cap: 8 });
    expect(capped.totals.succeeded).toEqual({ count: 2, capped: true });
    expect(capped.totals.failed.count).toBeLessThanOrEqual(2);
    expect(capped.countedFrom.succeeded).toBeInstanceOf(Date);
    expect(capped.minutes.at(-1)!.succeeded).toBe(2);
    // Another organization's throughput does not include these.
    expect((await getJobThroughput(db, { scope: { organizationId: newId() } })).totals.succeeded.count).toBe(0);

    // An hour on, the five-minute window holds none of them.
    const hourOn = await getJobThroughput(db, {
      scope: { organizationId: org },
      minutes: 5,
      now: new Date(Date.now() + 3_600_000),
    });
    expect(hourOn.until.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
    expect(hourOn.totals.succeeded).toEqual({ count: 0, capped: false });
    expect(hourOn.totals.canceled.count).toBe(0);
  });
});

describe("getOldestDueJob", () => {
  it("finds the longest-waiting due job across priorities and ignores future ones", async () => {
    const org = newId();
    const now = Date.now();
    await enqueueJob(db, { jobType: "admin.b", organizationId: org, priority: 5, nextRunAt: new Date(now - 60_000) });
    const oldest = await enqueueJob(db, {
      jobType: "admin.b",
      organizationId: org,
      priority: 1,
      nextRunAt: new Date(now - 3_600_000),
    });
    await enqueueJob(db, { jobType: "admin.b", organizationId: org, priority: 9, nextRunAt: new Date(now - 1000) });
    await enqueueJob(db, {
      jobType: "admin.b",
      organizationId: org,
      priority: 0,
      nextRunAt: new Date(now + 86_400_000),
    });
    const due = await getOldestDueJob(db, { scope: { organizationId: org } });
    expect(due).toMatchObject({ jobId: oldest.id, jobType: "admin.b", priority: 1 });
    expect(due!.waitingMs).toBeGreaterThanOrEqual(3_590_000);
    expect(await getOldestDueJob(db, { scope: { organizationId: newId() } })).toBeNull();
  });

  it("reads due and waiting at the clock it is given", async () => {
    const org = newId();
    const dueAt = new Date(Date.now() + 10 * 60_000);
    const job = await enqueueJob(db, { jobType: "admin.b", organizationId: org, nextRunAt: dueAt });
    const scope = { organizationId: org };
    expect(await getOldestDueJob(db, { scope })).toBeNull();
    const later = new Date(dueAt.getTime() + 60_000);
    expect(await getOldestDueJob(db, { scope, now: later })).toMatchObject({ jobId: job.id, waitingMs: 60_000 });
    await expect(getOldestDueJob(db, { scope, now: new Date(Number.NaN) })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });
});

describe("findStuckLeases", () => {
  it("counts a lease as stuck once the clock it is given is past its expiry and the grace", async () => {
    await defineJob(db, "admin.stuck");
    await enqueueJob(db, { jobType: "admin.stuck" });
    await claimJobs(db, { workerId: "w-stuck", leaseSeconds: 60, limit: 1, jobTypes: ["admin.stuck"] });
    const stuck = (now?: Date) => findStuckLeases(db, { graceSeconds: 300, now });
    const before = (await stuck()).count;
    expect((await stuck(new Date(Date.now() + 4 * 60_000))).count).toBe(before);
    const later = await stuck(new Date(Date.now() + 7 * 60_000));
    expect(later.count).toBeGreaterThan(before);
    expect(later.oldestExpiredAt).toBeInstanceOf(Date);
    await expect(stuck(new Date(Number.NaN))).rejects.toMatchObject({ code: "job.invalid_pagination" });
  });
});

describe("listRecentWorkers", () => {
  it("lists workers holding leases and workers that claimed recently", async () => {
    await defineJob(db, "admin.w");
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 3 }, () => ({ jobType: "admin.w", organizationId: org })),
    );
    const [done] = await claim("admin.w", "worker-done");
    await completeJobSuccess(db, { lease: done! });
    await claim("admin.w", "worker-busy", 2);
    const workers = await listRecentWorkers(db, { scope: { organizationId: org } });
    expect(workers.map((w) => [w.workerId, w.leased, w.recentAttempts]).sort()).toEqual([
      ["worker-busy", 2, 2],
      ["worker-done", 0, 1],
    ]);
    expect(workers.every((w) => w.lastClaimAt instanceof Date)).toBe(true);
    expect(await listRecentWorkers(db, { scope: { organizationId: newId() } })).toEqual([]);
  });
});

describe("searchJobsAndRuns", () => {
  it("finds a job by id or idempotency key and a run by id, within the organization", async () => {
    const org = newId();
    const other = newId();
    const keyed = await enqueueJob(db, { jobType: "admin.b", organizationId: org, idempotencyKey: "order-42" });
    const otherKeyed = await enqueueJob(db, { jobType: "admin.b", organizationId: other, idempotencyKey: "order-42" });
    const global = await enqueueJob(db, { jobType: "admin.a", idempotencyKey: "order-42" });
    const run = await enqueueWorkflowRun(db, {
      workflowType: "admin.flow",
      organizationId: org,
      metadata: {},
      idempotencyKey: null,
      steps: [externalStep("gate")],
    });

    const byKey = await searchJobsAndRuns(db, { query: " order-42 ", scope: { organizationId: org }, limit: 10 });
    expect(byKey.jobs.map((j) => j.id)).toEqual([keyed.id]);
    const everywhere = await searchJobsAndRuns(db, { scope: ALL_ORGANIZATIONS, query: "order-42", limit: 10 });
    expect(everywhere.jobs.map((j) => j.id).sort()).toEqual([keyed.id, otherKeyed.id, global.id].sort());

    expect(
      (await searchJobsAndRuns(db, { scope: ALL_ORGANIZATIONS, query: keyed.id.toUpperCase(), limit: 10 })).jobs[0]!.id,
    ).toBe(keyed.id);
    expect(
      (await searchJobsAndRuns(db, { query: keyed.id, scope: { organizationId: other }, limit: 10 })).jobs,
    ).toEqual([]);
    expect(
      (await searchJobsAndRuns(db, { query: run.id, scope: { organizationId: org }, limit: 10 })).runs[0]!.id,
    ).toBe(run.id);
    expect((await searchJobsAndRuns(db, { query: run.id, scope: { organizationId: other }, limit: 10 })).runs).toEqual(
      [],
    );
    expect(await searchJobsAndRuns(db, { scope: ALL_ORGANIZATIONS, query: "   ", limit: 10 })).toEqual({
      jobs: [],
      runs: [],
    });
    await expect(
      searchJobsAndRuns(db, { scope: ALL_ORGANIZATIONS, query: "a\u0000b", limit: 10 }),
    ).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });
});

describe("listDeadLetters", () => {
  it("pages through the jobs dead-lettered now, newest failure first, one type or all", async () => {
    await defineJob(db, "admin.dl1", { maxAttempts: 1 });
    await defineJob(db, "admin.dl2", { maxAttempts: 1 });
    const org = newId();
    const jobs = await enqueueJobs(db, [
      ...Array.from({ length: 5 }, () => ({ jobType: "admin.dl1", organizationId: org })),
      { jobType: "admin.dl2", organizationId: org },
    ]);
    // One claim and failure statement per type: the dead letters of a type share a failure time.
    await deadLetterAll("admin.dl1", "dl1.failed");
    await deadLetterAll("admin.dl2", "dl2.failed");
    await requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: jobs[0]!.id });

    const seen: string[] = [];
    let after: Parameters<typeof listDeadLetters>[1]["after"];
    for (;;) {
      const page = await listDeadLetters(db, { scope: { organizationId: org }, limit: 2, after });
      seen.push(...page.items.map((d) => d.jobId));
      if (page.next === null) break;
      after = page.next;
    }
    expect(seen.sort()).toEqual(
      jobs
        .slice(1)
        .map((j) => j.id)
        .sort(),
    );

    const ofType = await listDeadLetters(db, { scope: { organizationId: org }, jobType: "admin.dl2", limit: 10 });
    expect(ofType.items).toEqual([
      expect.objectContaining({ jobId: jobs[5]!.id, jobType: "admin.dl2", errorCode: "dl2.failed", attempt: 1 }),
    ]);
    expect((await listDeadLetters(db, { scope: { organizationId: newId() }, limit: 10 })).items).toEqual([]);
  });
});

describe("getJobWorkflowStep", () => {
  it("names the run and step a job backs, and nothing for a plain job", async () => {
    await defineJob(db, "admin.step");
    const org = newId();
    const run = await enqueueWorkflowRun(db, {
      workflowType: "admin.stepflow",
      organizationId: org,
      metadata: {},
      idempotencyKey: null,
      steps: [externalStep("work", [], { executionKind: "JOB", jobType: "admin.step" })],
    });
    const jobId = (await runSteps(db, run.id))[0]!.jobId!;
    expect(await getJobWorkflowStep(db, jobId, { organizationId: org })).toEqual({
      workflowRunId: run.id,
      stepKey: "work",
    });
    expect(await getJobWorkflowStep(db, jobId, { organizationId: newId() })).toBeNull();
    const plain = await enqueueJob(db, { jobType: "admin.step" });
    expect(await getJobWorkflowStep(db, plain.id, ALL_ORGANIZATIONS)).toBeNull();
  });
});

describe("listLeasedJobs", () => {
  it("lists the jobs being run, newest claim first, among the first unfinished jobs", async () => {
    await defineJob(db, "admin.leased");
    const org = newId();
    await enqueueJobs(
      db,
      Array.from({ length: 4 }, () => ({ jobType: "admin.leased", organizationId: org })),
    );
    const [first] = await claim("admin.leased", "w-leased-1");
    const [second] = await claim("admin.leased", "w-leased-2");
    const leased = await listLeasedJobs(db, { scope: { organizationId: org }, limit: 10 });
    expect(leased.items.map((j) => j.id)).toEqual([second!.jobId, first!.jobId]);
    expect(leased.items.every((j) => j.status === "LEASED")).toBe(true);
    const firstPage = await listLeasedJobs(db, { scope: { organizationId: org }, limit: 1 });
    expect(firstPage.items.map((j) => j.id)).toEqual([second!.jobId]);
    expect(firstPage.next).not.toBeNull();
    const secondPage = await listLeasedJobs(db, { scope: { organizationId: org }, limit: 1, after: firstPage.next! });
    expect(secondPage).toMatchObject({ items: [{ id: first!.jobId }], next: null, capped: false });
    expect((await listLeasedJobs(db, { scope: { organizationId: newId() }, limit: 10 })).items).toEqual([]);
    expect((await listLeasedJobs(db, { scope: ALL_ORGANIZATIONS, cap: 1, limit: 10 })).capped).toBe(true);
  });
});
