import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import { enqueueJob, getJobById, readQueueDepth } from "../../src/store/index.ts";
import { claimJobs, claimRunnableJobs, reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts } from "../support/factories.ts";

/*
 * The jobs' time decisions (what is due, which leases ran out) take a `now` from their caller, so
 * these tests set the time instead of editing rows. Their own database: a reap at a later `now`
 * takes every lease that has run out by then.
 */
const { db } = await useTestDatabase();

const HOUR = 3_600_000;
const inHours = (hours: number) => new Date(Date.now() + hours * HOUR);

describe("the clock of a claim", () => {
  it("takes a job due in an hour only when `now` is past it", async () => {
    await defineJob(db, "clock.due");
    const first = await enqueueJob(db, { jobType: "clock.due", nextRunAt: inHours(1) });
    const second = await enqueueJob(db, { jobType: "clock.due", nextRunAt: inHours(1) });
    // Leases that outlast the later tests' `now`, so only their own leases have run out by then.
    const claim = { workerId: "clock-w", leaseSeconds: 24 * 3600, limit: 1, jobTypes: ["clock.due"] };

    expect(await claimJobs(db, claim)).toEqual([]);
    expect(await claimRunnableJobs(db, claim)).toEqual([]);
    expect(await claimJobs(db, { ...claim, now: inHours(0.5) })).toEqual([]);

    const [job] = await claimJobs(db, { ...claim, now: inHours(2) });
    expect(job).toMatchObject({ id: first.id, status: "LEASED", attempt: 1 });
    const [runnable] = await claimRunnableJobs(db, { ...claim, now: inHours(2) });
    expect(runnable).toMatchObject({ id: second.id, attempt: 1 });
  });

  it("counts a job as due (queue depth) only when `now` is past its run-at", async () => {
    await defineJob(db, "clock.depth");
    await enqueueJob(db, { jobType: "clock.depth", nextRunAt: inHours(1) });
    const depth = async (now?: Date) =>
      (await readQueueDepth(db, { scope: ALL_ORGANIZATIONS, now })).find((row) => row.jobType === "clock.depth");

    expect(await depth()).toBeUndefined();
    const later = await depth(inHours(2));
    expect(later?.depth).toBe(1);
    expect(later?.oldestAgeSeconds).toBeGreaterThan(3000);
    expect(later?.oldestAgeSeconds).toBeLessThan(4000);
  });

  it("refuses a `now` that is not a time, before anything runs", async () => {
    await defineJob(db, "clock.invalid");
    await enqueueJob(db, { jobType: "clock.invalid" });
    const before = await ledgerCounts(db);
    const invalid = new Date(Number.NaN);
    const claim = { workerId: "clock-w", leaseSeconds: 60, limit: 1, jobTypes: ["clock.invalid"], now: invalid };
    await expect(claimJobs(db, claim)).rejects.toMatchObject({ code: "job.invalid_pagination" });
    await expect(claimRunnableJobs(db, claim)).rejects.toMatchObject({ code: "job.invalid_pagination" });
    await expect(reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000, now: invalid })).rejects.toMatchObject({
      code: "job.invalid_pagination",
      details: { field: "now" },
    });
    await expect(readQueueDepth(db, { scope: ALL_ORGANIZATIONS, now: invalid })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
    expect(await ledgerCounts(db)).toEqual(before);
  });
});

describe("the clock of expired-lease recovery", () => {
  it("recovers a lease only when `now` is past its expiry", async () => {
    await defineJob(db, "clock.lease", { maxAttempts: 3 });
    const { id } = await enqueueJob(db, { jobType: "clock.lease" });
    const [job] = await claimJobs(db, { workerId: "clock-w", leaseSeconds: 3600, limit: 1, jobTypes: ["clock.lease"] });
    expect(job?.id).toBe(id);

    expect(await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000 })).toMatchObject({ processed: 0 });
    expect(await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000, now: inHours(0.5) })).toMatchObject({
      processed: 0,
    });
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))?.status).toBe("LEASED");

    const result = await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000, now: inHours(2) });
    expect(result).toMatchObject({ processed: 1, retried: 1, released: 0, deferred: 0, deadLettered: [] });
    expect(await getJobById(db, id, ALL_ORGANIZATIONS)).toMatchObject({
      status: "PENDING",
      attempt: 1,
      statusReason: "LEASE_EXPIRED",
      lastErrorCode: "job.lease_expired",
    });
  });

  it("returns an unstarted prestart claim whose lease ran out by `now`, without counting its attempt", async () => {
    await defineJob(db, "clock.prestart");
    const { id } = await enqueueJob(db, { jobType: "clock.prestart" });
    await claimJobs(db, {
      workerId: "clock-w",
      leaseSeconds: 3600,
      limit: 1,
      jobTypes: ["clock.prestart"],
      prestart: true,
    });

    const result = await reapExpiredLeases(db, { limit: 10, retryDelayMs: 1000, now: inHours(2) });
    expect(result).toMatchObject({ processed: 1, released: 1, retried: 0 });
    expect(await getJobById(db, id, ALL_ORGANIZATIONS)).toMatchObject({ status: "PENDING", attempt: 0 });
  });

  it("defers a lease it fails to recover to `retryDelayMs` past its `now`", async () => {
    await defineJob(db, "clock.poison", { maxAttempts: 1 });
    const { id } = await enqueueJob(db, { jobType: "clock.poison" });
    await claimJobs(db, { workerId: "clock-w", leaseSeconds: 3600, limit: 1, jobTypes: ["clock.poison"] });
    // Dead-lettering this job fails, so its recovery is deferred.
    await db.execute(sql`
      create function runledger_test_clock_poison() returns trigger language plpgsql as $$
      begin if new.job_type = 'clock.poison' then raise exception 'poisoned'; end if; return new; end $$`);
    await db.execute(
      sql`create trigger clock_poison before insert on runledger.job_dead_letters for each row execute function runledger_test_clock_poison()`,
    );
    try {
      const now = inHours(2);
      const result = await reapExpiredLeases(db, { limit: 10, retryDelayMs: 60_000, now });
      expect(result).toMatchObject({ processed: 0, deferred: 1 });
      const job = await getJobById(db, id, ALL_ORGANIZATIONS);
      expect(job?.status).toBe("LEASED");
      expect(job?.leaseExpiresAt?.getTime()).toBe(now.getTime() + 60_000);
    } finally {
      await db.execute(sql`drop trigger clock_poison on runledger.job_dead_letters`);
      await db.execute(sql`drop function runledger_test_clock_poison`);
    }
  });
});
