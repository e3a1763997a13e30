// Schedules in time zones, overlap and catch-up policies, backfill and racing schedulers. Time is
// set, never waited for: every pass takes its `now`.
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  backfillJobSchedule,
  createDb,
  getJobSchedule,
  type JobScheduleUpsert,
  listJobSchedules,
  queryRows,
  type RunledgerDb,
  setJobScheduleActive,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { claimRunnableJobs, type MaterializeResult, materializeDueSchedules } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob, ledgerCounts } from "../support/factories.ts";

const { db, url } = await useTestDatabase();
const schedulers: RunledgerDb[] = Array.from({ length: 3 }, () => createDb(url, { max: 2 }));
afterAll(() => Promise.all(schedulers.map((s) => s.$runledger.close())));

const at = (iso: string) => new Date(iso);
const MINUTE = 60_000;

beforeAll(async () => {
  await defineJob(db, "tz.report");
});

// Each test sets its own clock, years apart: earlier tests' schedules must not wake up in later ones.
afterEach(async () => {
  await db.execute(sql`update runledger.job_schedules set is_active = false`);
});

/** A schedule of its own job type, so other tests' schedules never mix into its jobs. */
async function schedule(input: Omit<JobScheduleUpsert, "jobType"> & { jobType?: string }) {
  const jobType = input.jobType ?? `job.${input.name}`;
  await defineJob(db, jobType);
  return upsertJobSchedule(db, { ...input, jobType });
}

/** Run one pass (as many as it takes while slots are left) at each instant from `from` to `to`. */
async function passes(from: Date, to: Date, stepMs: number, name: string): Promise<MaterializeResult> {
  const all: MaterializeResult = { fired: [], skipped: [], failed: [], more: false };
  for (let t = from.getTime(); t <= to.getTime(); t += stepMs) {
    for (let more = true; more; ) {
      const result = await materializeDueSchedules(db, { now: new Date(t), limit: 100 });
      all.fired.push(...result.fired.filter((f) => f.scheduleName === name));
      all.skipped.push(...result.skipped.filter((f) => f.scheduleName === name));
      all.failed.push(...result.failed.filter((f) => f.scheduleName === name));
      more = result.more;
    }
  }
  return all;
}

const slotsOf = (result: MaterializeResult) => result.fired.map((f) => f.scheduledFor.toISOString());

/** Jobs of a schedule as (slot, status), oldest slot first. */
async function jobsOf(scheduleId: string) {
  const rows = await queryRows<{ id: string; ms: number; status: string; payload: unknown }>(
    db,
    sql`select id, (extract(epoch from scheduled_for) * 1000)::float8 as ms, status::text, payload
      from runledger.job_queue where schedule_id = ${scheduleId} order by scheduled_for`,
  );
  return rows.map(({ ms, ...row }) => ({ ...row, scheduled_for: new Date(ms) }));
}

/** Finish a job as a worker would have (the tests' clock is far from the database's). */
async function finish(jobId: string) {
  await db.execute(
    sql`update runledger.job_queue set status = 'SUCCEEDED', finished_at = now(), stage = 'completed' where id = ${jobId}`,
  );
}

describe("time zones", () => {
  it.each([
    ["an unknown zone", "Mars/Olympus"],
    ["an offset", "+01:00"],
    ["a blank zone", " "],
    ["a padded zone", " Europe/Berlin"],
  ])("refuses %s with job_schedule.invalid_timezone and writes nothing", async (_, timezone) => {
    const before = await countRows(db, "job_schedules");
    await expect(
      upsertJobSchedule(db, { name: "bad.zone", jobType: "tz.report", cronExpr: "0 0 * * * *", timezone }),
    ).rejects.toMatchObject({ code: "job_schedule.invalid_timezone" });
    expect(await countRows(db, "job_schedules")).toBe(before);
  });

  it.each([
    // [zone, cron, pass from, pass to, fires], each the local 02:30 (New York fall-back: 01:30).
    [
      "Europe/Berlin spring-forward: 02:30 does not exist, fires once at 03:00 CEST",
      "Europe/Berlin",
      "0 30 2 * * *",
      "2030-03-30T12:00:00Z",
      ["2030-03-31T01:00:00.000Z", "2030-04-01T00:30:00.000Z"],
    ],
    [
      "Europe/Berlin fall-back: 02:30 happens twice, fires once at the first",
      "Europe/Berlin",
      "0 30 2 * * *",
      "2030-10-26T12:00:00Z",
      ["2030-10-27T00:30:00.000Z", "2030-10-28T01:30:00.000Z"],
    ],
    [
      "America/New_York spring-forward: 02:30 fires once at 03:00 EDT",
      "America/New_York",
      "0 30 2 * * *",
      "2030-03-09T12:00:00Z",
      ["2030-03-10T07:00:00.000Z", "2030-03-11T06:30:00.000Z"],
    ],
    [
      "America/New_York fall-back: 01:30 happens twice, fires once at the first",
      "America/New_York",
      "0 30 1 * * *",
      "2030-11-02T12:00:00Z",
      ["2030-11-03T05:30:00.000Z", "2030-11-04T06:30:00.000Z"],
    ],
  ])("%s", async (title, timezone, cronExpr, start, fires) => {
    const name = `dst.${title.split(":")[0]!.replaceAll(" ", "-")}`;
    const from = at(start);
    const created = await schedule({ name, cronExpr, timezone, now: from });
    expect(created).toMatchObject({ timezone, nextSlotAt: at(fires[0]!) });
    // A pass every ten minutes for two days.
    const result = await passes(from, new Date(from.getTime() + 48 * 60 * MINUTE), 10 * MINUTE, name);
    expect(result.failed).toEqual([]);
    expect(slotsOf(result)).toEqual(fires);
    expect(result.skipped).toEqual([]);
  });

  it("follows the clock for hourly slots: 25 on Berlin's fall-back day, 23 on its spring-forward day", async () => {
    await schedule({
      name: "dst.hourly.fall",
      cronExpr: "0 0 * * * *",
      timezone: "Europe/Berlin",
      now: at("2030-10-26T21:59:59Z"),
    });
    const fall = await passes(at("2030-10-26T22:00:00Z"), at("2030-10-27T22:59:00Z"), 15 * MINUTE, "dst.hourly.fall");
    expect(fall.fired).toHaveLength(25);
    await schedule({
      name: "dst.hourly.spring",
      cronExpr: "0 0 * * * *",
      timezone: "Europe/Berlin",
      now: at("2030-03-30T22:59:59Z"),
    });
    const spring = await passes(
      at("2030-03-30T23:00:00Z"),
      at("2030-03-31T21:59:00Z"),
      15 * MINUTE,
      "dst.hourly.spring",
    );
    expect(spring.fired).toHaveLength(23);
    expect(new Set(slotsOf(spring)).size).toBe(23);
  });

  it("moves the cursor when the zone changes, and lists upcoming slots in the zone", async () => {
    const now = at("2030-06-01T12:00:00Z");
    const utc = await schedule({ name: "tz.move", cronExpr: "0 0 9 * * *", now });
    expect(utc.nextSlotAt).toEqual(at("2030-06-02T09:00:00Z"));
    const tokyo = await schedule({ name: "tz.move", cronExpr: "0 0 9 * * *", timezone: "Asia/Tokyo", now });
    expect(tokyo).toMatchObject({ id: utc.id, timezone: "Asia/Tokyo", nextSlotAt: at("2030-06-02T00:00:00Z") });
    const listed = await getJobSchedule(db, "tz.move", ALL_ORGANIZATIONS, { upcoming: 3 });
    expect(listed!.upcoming.map((u) => u.scheduledFor.toISOString())).toEqual([
      "2030-06-02T00:00:00.000Z",
      "2030-06-03T00:00:00.000Z",
      "2030-06-04T00:00:00.000Z",
    ]);
    const [item] = (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 1000, upcoming: 1 })).items.filter(
      (s) => s.name === "tz.move",
    );
    expect(item).toMatchObject({
      overlapPolicy: "ALLOW",
      catchupWindowSeconds: 0,
      upcoming: [{ fireAt: at("2030-06-02T00:00:00Z") }],
    });
  });
});

describe("overlap policies", () => {
  const t0 = at("2031-01-01T00:00:00Z");
  const minute = (n: number) => new Date(t0.getTime() + n * MINUTE);

  it("SKIP drops slots while the previous fire's job is live, and counts them", async () => {
    const s = await schedule({ name: "overlap.skip", cronExpr: "0 * * * * *", overlapPolicy: "SKIP", nextFireAt: t0 });
    const first = await passes(minute(0), minute(0), MINUTE, "overlap.skip");
    expect(slotsOf(first)).toEqual([minute(0).toISOString()]);
    const skipped = await passes(minute(1), minute(2), MINUTE, "overlap.skip");
    expect(skipped.fired).toEqual([]);
    expect(skipped.skipped).toMatchObject([{ overlapSkipped: 1 }, { overlapSkipped: 1 }]);
    await finish(first.fired[0]!.jobId);
    const after = await passes(minute(3), minute(3), MINUTE, "overlap.skip");
    expect(slotsOf(after)).toEqual([minute(3).toISOString()]);
    expect((await jobsOf(s.id)).map((j) => j.scheduled_for)).toEqual([minute(0), minute(3)]);
    expect((await getJobSchedule(db, "overlap.skip", ALL_ORGANIZATIONS))!.overlapSkipCount).toBe(2);
  });

  it("BUFFER_ONE holds one slot while the job is live, drops the rest, and fires the held one once it finishes", async () => {
    const s = await schedule({
      name: "overlap.buffer",
      cronExpr: "0 * * * * *",
      overlapPolicy: "BUFFER_ONE",
      nextFireAt: t0,
    });
    const first = await passes(minute(0), minute(0), MINUTE, "overlap.buffer");
    const held = await passes(minute(1), minute(2), MINUTE, "overlap.buffer");
    expect(held.fired).toEqual([]);
    // Minute 1 is held; minute 2 found the buffer full.
    expect(held.skipped).toMatchObject([{ overlapSkipped: 1 }]);
    expect((await getJobSchedule(db, "overlap.buffer", ALL_ORGANIZATIONS))!.bufferedSlotAt).toEqual(minute(1));
    // Still live: nothing is released between slots.
    expect(
      (
        await passes(
          new Date(minute(2).getTime() + 20_000),
          new Date(minute(2).getTime() + 20_000),
          MINUTE,
          "overlap.buffer",
        )
      ).fired,
    ).toEqual([]);
    await finish(first.fired[0]!.jobId);
    // Released by the next pass, before the next slot, with its own slot time.
    const released = await passes(
      new Date(minute(2).getTime() + 30_000),
      new Date(minute(2).getTime() + 30_000),
      MINUTE,
      "overlap.buffer",
    );
    expect(slotsOf(released)).toEqual([minute(1).toISOString()]);
    // That job is live now, so minute 3 is held in turn.
    const next = await passes(minute(3), minute(3), MINUTE, "overlap.buffer");
    expect(next.fired).toEqual([]);
    expect((await getJobSchedule(db, "overlap.buffer", ALL_ORGANIZATIONS))!.bufferedSlotAt).toEqual(minute(3));
    expect((await jobsOf(s.id)).map((j) => j.scheduled_for)).toEqual([minute(0), minute(1)]);
  });

  it("ALLOW fires every slot regardless", async () => {
    await schedule({ name: "overlap.allow", cronExpr: "0 * * * * *", nextFireAt: t0 });
    expect(slotsOf(await passes(minute(0), minute(2), MINUTE, "overlap.allow"))).toHaveLength(3);
  });
});

describe("catch-up after downtime", () => {
  it("after a 3-hour outage fires each slot of the last hour with its own time, and skips and counts the older ones", async () => {
    const [clock] = await queryRows<{ ms: number }>(db, sql`select (extract(epoch from now()) * 1000)::float8 as ms`);
    // The database's clock, so the jobs are due for a claim right away.
    const now = new Date(Math.floor(clock!.ms) - 1000);
    const quarter = 15 * MINUTE;
    const lastFire = new Date(Math.floor((now.getTime() - 3 * 60 * MINUTE) / quarter) * quarter);
    const s = await schedule({
      name: "catchup.outage",
      cronExpr: "0 */15 * * * *",
      timezone: "Europe/Berlin",
      catchupWindowSeconds: 3600,
      nextFireAt: lastFire,
    });
    expect(slotsOf(await passes(lastFire, lastFire, MINUTE, "catchup.outage"))).toHaveLength(1);

    // The scheduler was down for three hours; the next pass is at `now`.
    const result = await passes(now, now, MINUTE, "catchup.outage");
    const due: number[] = [];
    for (let slot = lastFire.getTime() + quarter; slot <= now.getTime(); slot += quarter) due.push(slot);
    const inWindow = due.filter((slot) => slot >= now.getTime() - 3600_000);
    expect(due.length).toBeGreaterThanOrEqual(12);
    expect(inWindow.length).toBeGreaterThanOrEqual(4);
    expect(slotsOf(result)).toEqual(inWindow.map((ms) => new Date(ms).toISOString()));
    expect(result.skipped).toMatchObject([{ missed: due.length - inWindow.length, overlapSkipped: 0 }]);
    expect(await getJobSchedule(db, "catchup.outage", ALL_ORGANIZATIONS)).toMatchObject({
      missedSlotCount: due.length - inWindow.length,
      nextSlotAt: new Date(due.at(-1)! + quarter),
    });

    // Each job carries its own slot into the worker's claim, outside the payload.
    const claimed = await claimRunnableJobs(db, {
      workerId: "w",
      leaseSeconds: 60,
      limit: 100,
      jobTypes: ["job.catchup.outage"],
    });
    expect(claimed.map((j) => j.schedule?.scheduledFor.getTime()).sort()).toEqual(
      [due[0]! - quarter, ...inWindow].sort(),
    );
    for (const job of claimed) {
      expect(job.schedule).toMatchObject({ id: s.id, name: "catchup.outage" });
      expect(job.payload).toEqual({});
    }
  });

  it("a resumed schedule fires its latest missed slot at once and counts the older ones", async () => {
    const t0 = at("2032-01-01T00:00:00Z");
    await schedule({ name: "catchup.paused", cronExpr: "0 0 * * * *", nextFireAt: t0 });
    await setJobScheduleActive(db, "catchup.paused", false, ALL_ORGANIZATIONS);
    expect((await passes(t0, at("2032-01-01T05:30:00Z"), 30 * MINUTE, "catchup.paused")).fired).toEqual([]);
    await setJobScheduleActive(db, "catchup.paused", true, ALL_ORGANIZATIONS);
    const resumed = await passes(at("2032-01-01T05:30:00Z"), at("2032-01-01T05:30:00Z"), MINUTE, "catchup.paused");
    expect(slotsOf(resumed)).toEqual(["2032-01-01T05:00:00.000Z"]);
    expect(resumed.skipped).toMatchObject([{ missed: 5 }]);
  });

  it("works off a backlog larger than one pass over several passes, each slot once", async () => {
    const t0 = at("2033-01-01T00:00:00Z");
    const s = await schedule({
      name: "catchup.backlog",
      cronExpr: "* * * * * *",
      catchupWindowSeconds: 3 * 3600,
      nextFireAt: t0,
    });
    const result = await passes(at("2033-01-01T02:00:00Z"), at("2033-01-01T02:00:00Z"), MINUTE, "catchup.backlog");
    expect(result.fired).toHaveLength(2 * 3600 + 1);
    expect(new Set(slotsOf(result)).size).toBe(2 * 3600 + 1);
    expect(await countRows(db, "job_queue", sql`schedule_id = ${s.id}`)).toBe(2 * 3600 + 1);
  });

  it("deactivates a schedule whose expression has no later slot after firing its last", async () => {
    await schedule({ name: "catchup.last", cronExpr: "0 0 0 1 1 * 2034", nextFireAt: at("2034-01-01T00:00:00Z") });
    const result = await passes(at("2034-01-01T00:00:01Z"), at("2034-01-01T00:00:01Z"), MINUTE, "catchup.last");
    expect(slotsOf(result)).toEqual(["2034-01-01T00:00:00.000Z"]);
    expect((await getJobSchedule(db, "catchup.last", ALL_ORGANIZATIONS))!.isActive).toBe(false);
  });
});

describe("backfill", () => {
  it("fires every slot of a past interval once; a second run creates nothing", async () => {
    const s = await schedule({
      name: "backfill.ny",
      cronExpr: "0 0 * * * *",
      timezone: "America/New_York",
      payloadTemplate: { kind: "hourly" },
    });
    const request = {
      name: "backfill.ny",
      from: at("2030-01-01T05:00:00Z"), // midnight in New York
      to: at("2030-01-02T05:00:00Z"),
      now: at("2030-02-01T00:00:00Z"),
    };
    const first = await backfillJobSchedule(db, request, ALL_ORGANIZATIONS);
    expect(first).toMatchObject({ slots: 24, existing: 0 });
    expect(first.created).toHaveLength(24);
    const second = await backfillJobSchedule(db, request, ALL_ORGANIZATIONS);
    expect(second).toEqual({ slots: 24, created: [], existing: 24 });
    const jobs = await jobsOf(s.id);
    expect(jobs).toHaveLength(24);
    expect(jobs[0]).toMatchObject({ scheduled_for: at("2030-01-01T05:00:00Z"), payload: { kind: "hourly" } });
    expect(new Set(jobs.map((j) => j.scheduled_for.getTime())).size).toBe(24);
    // A wider interval fills in only what is missing.
    const wider = await backfillJobSchedule(db, { ...request, to: at("2030-01-02T07:00:00Z") }, ALL_ORGANIZATIONS);
    expect(wider).toMatchObject({ slots: 26, existing: 24 });
    expect(wider.created.map((c) => c.scheduledFor)).toEqual([at("2030-01-02T05:00:00Z"), at("2030-01-02T06:00:00Z")]);
  });

  it("never duplicates a slot the scheduler fired, nor the other way round", async () => {
    const s = await schedule({
      name: "backfill.mixed",
      cronExpr: "0 0 * * * *",
      nextFireAt: at("2030-03-01T03:00:00Z"),
      catchupWindowSeconds: 86_400,
    });
    await backfillJobSchedule(
      db,
      {
        name: "backfill.mixed",
        from: at("2030-03-01T00:00:00Z"),
        to: at("2030-03-01T05:00:00Z"),
        now: at("2030-03-01T06:30:00Z"),
      },
      ALL_ORGANIZATIONS,
    );
    const fired = await passes(at("2030-03-01T06:30:00Z"), at("2030-03-01T06:30:00Z"), MINUTE, "backfill.mixed");
    // 03:00 and 04:00 already had jobs from the backfill; 05:00 and 06:00 are new.
    expect(slotsOf(fired)).toEqual(["2030-03-01T05:00:00.000Z", "2030-03-01T06:00:00.000Z"]);
    expect((await jobsOf(s.id)).map((j) => j.scheduled_for.getUTCHours())).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it.each([
    ["an interval ending after now", { to: at("2030-02-02T00:00:00Z") }, "job_schedule.invalid_backfill_range"],
    ["a reversed interval", { from: at("2030-01-03T00:00:00Z") }, "job_schedule.invalid_backfill_range"],
    ["an unknown schedule", { name: "backfill.none" }, "job_schedule.not_found"],
    [
      "more than 10,000 slots",
      { name: "backfill.seconds", from: at("2030-01-01T00:00:00Z") },
      "job_schedule.backfill_too_large",
    ],
  ])("refuses %s and writes nothing", async (_, override, code) => {
    await schedule({ name: "backfill.seconds", cronExpr: "* * * * * *", isActive: false });
    const before = await ledgerCounts(db);
    await expect(
      backfillJobSchedule(
        db,
        {
          name: "backfill.ny",
          from: at("2030-01-01T05:00:00Z"),
          to: at("2030-01-02T05:00:00Z"),
          now: at("2030-02-01T00:00:00Z"),
          ...override,
        },
        ALL_ORGANIZATIONS,
      ),
    ).rejects.toMatchObject({ code });
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("refuses a backfill or a get without a scope before reading anything", async () => {
    const before = await ledgerCounts(db);
    const request = { name: "backfill.ny", from: at("2030-01-01T05:00:00Z"), to: at("2030-01-02T05:00:00Z") };
    await expect(backfillJobSchedule(db, request, undefined as never)).rejects.toMatchObject({
      code: "scope.required",
    });
    await expect(getJobSchedule(db, "backfill.ny", {} as never)).rejects.toMatchObject({ code: "scope.required" });
    expect(await ledgerCounts(db)).toEqual(before);
  });
});

describe("racing schedulers", () => {
  it("three schedulers with skewed clocks catching up one schedule fire each slot once", async () => {
    const t0 = at("2035-01-01T00:00:00Z");
    const s = await schedule({
      name: "race.catchup",
      cronExpr: "0 * * * * *",
      catchupWindowSeconds: 4 * 3600,
      nextFireAt: t0,
    });
    await Promise.all(
      schedulers.map(async (scheduler, i) => {
        for (let pass = 0; pass < 20; pass++) {
          // Clocks a few seconds apart, each moving on a minute per pass.
          const now = new Date(t0.getTime() + 3 * 60 * MINUTE + pass * MINUTE + i * 7_000);
          await materializeDueSchedules(scheduler, { now, limit: 7 });
        }
      }),
    );
    const jobs = await jobsOf(s.id);
    const slots = jobs.map((j) => j.scheduled_for.getTime());
    expect(new Set(slots).size).toBe(slots.length);
    // Every minute from t0 to the latest clock (3 h 19 min 14 s later) fired.
    expect(slots).toEqual(Array.from({ length: 3 * 60 + 19 + 1 }, (_, n) => t0.getTime() + n * MINUTE));
  });
});
