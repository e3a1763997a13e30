import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  createDb,
  getJobById,
  listJobSchedules,
  queryRows,
  type RunledgerDb,
  setJobScheduleActive,
  setJobScheduleNextFireAt,
  upsertJobDefinition,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { materializeDueSchedules } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob } from "../support/factories.ts";

const { db, url } = await useTestDatabase();
const ORG = "0190f0a0-0000-7000-8000-00000000000a";
const T0 = new Date("2030-01-01T00:00:00Z");
const schedulers: RunledgerDb[] = Array.from({ length: 3 }, () => createDb(url, { max: 2 }));
afterAll(() => Promise.all(schedulers.map((s) => s.$runledger.close())));

beforeAll(async () => {
  await defineJob(db, "report.build");
  await defineJob(db, "report.other");
});

describe("upsertJobSchedule", () => {
  it("refreshes the definition but keeps pause state, organization and (same cron) next fire", async () => {
    const first = await upsertJobSchedule(db, {
      name: "reports.hourly",
      jobType: "report.build",
      organizationId: ORG,
      payloadTemplate: { v: 1 },
      cronExpr: "0 0 * * * *",
      nextFireAt: T0,
    });
    expect(first).toMatchObject({ isActive: true, organizationId: ORG, timezone: "UTC", nextFireAt: T0 });
    expect(await setJobScheduleActive(db, "reports.hourly", false, ALL_ORGANIZATIONS)).toBe(true);

    const later = new Date("2031-01-01T00:00:00Z");
    // Without an organization an upsert may refresh only a schedule without one.
    await expect(
      upsertJobSchedule(db, { name: "reports.hourly", jobType: "report.other", cronExpr: "0 0 * * * *" }),
    ).rejects.toMatchObject({ code: "job_schedule.name_taken" });
    const refreshed = await upsertJobSchedule(db, {
      name: "reports.hourly",
      jobType: "report.other",
      organizationId: ORG,
      payloadTemplate: { v: 2 },
      cronExpr: "0 0 * * * *",
      isActive: true,
      nextFireAt: later,
      maxJitterSeconds: 5,
    });
    expect(refreshed).toMatchObject({
      id: first.id,
      jobType: "report.other",
      payloadTemplate: { v: 2 },
      isActive: false,
      organizationId: ORG,
      nextFireAt: T0,
      maxJitterSeconds: 5,
    });

    const recron = await upsertJobSchedule(db, {
      name: "reports.hourly",
      jobType: "report.other",
      organizationId: ORG,
      cronExpr: "0 30 * * * *",
      nextFireAt: later,
    });
    expect(recron).toMatchObject({ cronExpr: "0 30 * * * *", nextFireAt: later, isActive: false });
  });

  it.each([
    [{ cronExpr: "0 * * * *" }, "job_schedule.invalid_cron"],
    [{ cronExpr: " 0 0 * * * *" }, "job_schedule.invalid_cron"],
    [{ cronExpr: "nonsense" }, "job_schedule.invalid_cron"],
    [{ name: " " }, "job_schedule.invalid_name"],
    [{ name: " padded" }, "job_schedule.invalid_name"],
    [{ maxJitterSeconds: -1 }, "job_schedule.invalid_jitter"],
    [{ maxJitterSeconds: 86_401 }, "job_schedule.invalid_jitter"],
  ])("refuses %o with %s and writes nothing", async (override, code) => {
    const before = await countRows(db, "job_schedules");
    await expect(
      upsertJobSchedule(db, {
        name: "bad",
        jobType: "report.build",
        cronExpr: "0 0 * * * *",
        nextFireAt: T0,
        ...override,
      }),
    ).rejects.toMatchObject({ code });
    expect(await countRows(db, "job_schedules")).toBe(before);
  });

  it("refuses an unknown job type, and a disabled one for an active schedule", async () => {
    const before = await countRows(db, "job_schedules");
    await expect(
      upsertJobSchedule(db, { name: "orphan", jobType: "nope", cronExpr: "0 0 * * * *", nextFireAt: T0 }),
    ).rejects.toMatchObject({ code: "job_schedule.definition_not_found_or_disabled" });
    await upsertJobDefinition(db, { jobType: "report.off", isEnabled: false });
    const disabled = { name: "on-disabled", jobType: "report.off", cronExpr: "0 0 * * * *", nextFireAt: T0 };
    await expect(upsertJobSchedule(db, disabled)).rejects.toMatchObject({
      code: "job_schedule.definition_not_found_or_disabled",
    });
    expect(await countRows(db, "job_schedules")).toBe(before);
    // Paused, it may wait for its type to be enabled.
    expect(await upsertJobSchedule(db, { ...disabled, isActive: false })).toMatchObject({ isActive: false });
    // ...but not be resumed while it stays disabled; pausing is always allowed.
    await expect(setJobScheduleActive(db, "on-disabled", true, ALL_ORGANIZATIONS)).rejects.toMatchObject({
      code: "job_schedule.definition_not_found_or_disabled",
      details: { jobType: "report.off" },
    });
    expect(await setJobScheduleActive(db, "on-disabled", false, ALL_ORGANIZATIONS)).toBe(true);
    expect(
      (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 1000 })).items.find(
        (s) => s.name === "on-disabled",
      ),
    ).toMatchObject({
      isActive: false,
    });
    await upsertJobDefinition(db, { jobType: "report.off", isEnabled: true });
    expect(await setJobScheduleActive(db, "on-disabled", true, ALL_ORGANIZATIONS)).toBe(true);
    expect(await setJobScheduleNextFireAt(db, "missing", T0, ALL_ORGANIZATIONS)).toBe(false);
  });
});

describe("materializeDueSchedules", () => {
  it("fires the latest due slot into a scheduled job whose payload is the template, and counts the one it superseded", async () => {
    await upsertJobSchedule(db, {
      name: "fire.once",
      jobType: "report.build",
      payloadTemplate: { kind: "daily" },
      cronExpr: "0 0 * * * *",
      nextFireAt: new Date("2029-12-31T23:00:00Z"),
    });
    // 23:00 and 00:00 are both due; without a catch-up window only the latest fires.
    const now = new Date("2030-01-01T00:00:05Z");
    const { fired, skipped, failed } = await materializeDueSchedules(db, { now, limit: 100 });
    const mine = fired.filter((f) => f.scheduleName === "fire.once");
    expect(failed).toEqual([]);
    expect(mine).toMatchObject([{ scheduledFor: new Date("2030-01-01T00:00:00Z") }]);
    expect(skipped.filter((s) => s.scheduleName === "fire.once")).toMatchObject([{ missed: 1, overlapSkipped: 0 }]);
    const job = await getJobById(db, mine[0]!.jobId, ALL_ORGANIZATIONS);
    expect(job).toMatchObject({
      stage: "scheduled",
      jobType: "report.build",
      nextRunAt: now,
      payload: { kind: "daily" },
      scheduleId: mine[0]!.scheduleId,
      scheduledFor: new Date("2030-01-01T00:00:00Z"),
    });
    const [schedule] = (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 1000 })).items.filter(
      (s) => s.name === "fire.once",
    );
    expect(schedule).toMatchObject({
      nextSlotAt: new Date("2030-01-01T01:00:00Z"),
      nextFireAt: new Date("2030-01-01T01:00:00Z"),
      lastFiredAt: now,
      lastJobId: job!.id,
      missedSlotCount: 1,
    });
    // Nothing is due any more at the same instant.
    expect(
      (await materializeDueSchedules(db, { now, limit: 100 })).fired.filter((f) => f.scheduleName === "fire.once"),
    ).toEqual([]);
  });

  it("fires a slot due in ten minutes when the pass's clock is eleven minutes on, and not before", async () => {
    await defineJob(db, "report.soon");
    const due = new Date(Date.now() + 10 * 60_000);
    // A yearly expression: the explicit first slot is the only one in reach.
    await upsertJobSchedule(db, { name: "due.soon", jobType: "report.soon", cronExpr: "0 0 0 1 1 *", nextFireAt: due });
    const mine = (result: Awaited<ReturnType<typeof materializeDueSchedules>>) =>
      result.fired.filter((f) => f.scheduleName === "due.soon");
    expect(mine(await materializeDueSchedules(db, { limit: 100 }))).toEqual([]);
    const later = new Date(Date.now() + 11 * 60_000);
    expect(mine(await materializeDueSchedules(db, { now: later, limit: 100 }))).toMatchObject([{ scheduledFor: due }]);
    expect(mine(await materializeDueSchedules(db, { now: later, limit: 100 }))).toEqual([]);
    await expect(materializeDueSchedules(db, { now: new Date(Number.NaN), limit: 1 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });

  it("fires nothing for a paused schedule, and defers one whose job type is disabled", async () => {
    await defineJob(db, "report.paused");
    await upsertJobSchedule(db, {
      name: "paused",
      jobType: "report.paused",
      cronExpr: "* * * * * *",
      nextFireAt: T0,
      isActive: false,
    });
    await defineJob(db, "report.disabled");
    await upsertJobSchedule(db, {
      name: "disabled.type",
      jobType: "report.disabled",
      cronExpr: "* * * * * *",
      nextFireAt: T0,
    });
    // The store refuses to disable a type an active schedule uses; a hand-written update (or a
    // database from before that guard) can still leave one.
    await db.execute(sql`update runledger.job_definitions set is_enabled = false where job_type = 'report.disabled'`);
    const now = new Date("2030-01-01T00:00:10Z");
    const result = await materializeDueSchedules(db, { now, limit: 100 });
    expect(result.fired.map((f) => f.scheduleName)).not.toContain("paused");
    expect(result.failed).toMatchObject([
      { scheduleName: "disabled.type", error: { code: "job.definition_not_found_or_disabled" } },
    ]);
    const deferred = (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 1000 })).items.find(
      (s) => s.name === "disabled.type",
    )!;
    expect(deferred.nextFireAt).toEqual(new Date(now.getTime() + 30_000));
    expect(await countRows(db, "job_queue", sql`job_type in ('report.paused', 'report.disabled')`)).toBe(0);
  });

  it("three schedulers racing over 50 due slots produce exactly 50 jobs", async () => {
    await defineJob(db, "race.tick");
    for (let i = 0; i < 50; i++) {
      await upsertJobSchedule(db, { name: `race-${i}`, jobType: "race.tick", cronExpr: "0 0 0 * * *", nextFireAt: T0 });
    }
    const now = new Date("2030-01-01T00:00:01Z");
    await Promise.all(
      schedulers.map(async (scheduler) => {
        for (let pass = 0; pass < 10; pass++) await materializeDueSchedules(scheduler, { now, limit: 7 });
      }),
    );
    const [row] = await queryRows<{ jobs: number; slots: number }>(
      db,
      sql`select count(*)::int as jobs, count(distinct schedule_id)::int as slots
        from runledger.job_queue where job_type = 'race.tick'`,
    );
    expect(row).toEqual({ jobs: 50, slots: 50 });
  });
});
