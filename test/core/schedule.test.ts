import { describe, expect, it } from "vitest";
import {
  compileCron,
  MAX_CATCHUP_WINDOW_SECONDS,
  nextCronFire,
  planScheduleFires,
  type ScheduleCursor,
  scheduleSlotsBetween,
  validateCatchupWindowSeconds,
  validateOverlapPolicy,
  validateTimeZone,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

const at = (iso: string) => new Date(iso);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe("time zones", () => {
  it.each(["UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])(
    "accepts %s",
    (zone) => {
      expect(() => validateTimeZone(zone)).not.toThrow();
    },
  );

  it.each(["", " UTC", "Mars/Olympus", "+01:00", "UTC+1", "Europe/Berlin\n", "a".repeat(65)])(
    "refuses %j with job_schedule.invalid_timezone",
    (zone) => {
      expectCode(() => validateTimeZone(zone), "job_schedule.invalid_timezone");
      expectCode(() => compileCron("0 0 * * * *", zone), "job_schedule.invalid_timezone");
    },
  );

  it("evaluates in the zone, with its offset of the day", () => {
    expect(nextCronFire("0 0 9 * * *", at("2030-01-14T12:00:00Z"), "Asia/Tokyo")).toEqual(at("2030-01-15T00:00:00Z"));
    expect(nextCronFire("0 0 9 * * *", at("2030-01-15T00:00:00Z"), "America/New_York")).toEqual(
      at("2030-01-15T14:00:00Z"),
    );
    expect(nextCronFire("0 0 9 * * *", at("2030-07-15T00:00:00Z"), "America/New_York")).toEqual(
      at("2030-07-15T13:00:00Z"),
    );
  });

  it("across DST, fires a fixed local time once a day and clock-following patterns by the clock", () => {
    const berlin = (expr: string, from: string, to: string) =>
      iso(scheduleSlotsBetween(expr, "Europe/Berlin", at(from), at(to)));
    // Spring forward on 2030-03-31 (02:00 → 03:00): 02:30 moves to 03:00, once.
    expect(berlin("0 30 2 * * *", "2030-03-30T00:00:00Z", "2030-04-02T00:00:00Z")).toEqual([
      "2030-03-30T01:30:00.000Z",
      "2030-03-31T01:00:00.000Z",
      "2030-04-01T00:30:00.000Z",
    ]);
    // Fall back on 2030-10-27 (03:00 → 02:00): the first 02:30 only.
    expect(berlin("0 30 2 * * *", "2030-10-26T00:00:00Z", "2030-10-29T00:00:00Z")).toEqual([
      "2030-10-26T00:30:00.000Z",
      "2030-10-27T00:30:00.000Z",
      "2030-10-28T01:30:00.000Z",
    ]);
    // Every 30 minutes follows the clock: both passes of the repeated hour...
    expect(berlin("0 0,30 2 * * *", "2030-10-26T23:00:00Z", "2030-10-27T03:00:00Z")).toEqual([
      "2030-10-27T00:00:00.000Z",
      "2030-10-27T00:30:00.000Z",
      "2030-10-27T01:00:00.000Z",
      "2030-10-27T01:30:00.000Z",
    ]);
    // ... and none of the skipped one.
    expect(berlin("0 0,30 2 * * *", "2030-03-30T23:00:00Z", "2030-03-31T03:00:00Z")).toEqual([]);
  });
});

describe("policies", () => {
  it("validates overlap policies and catch-up windows", () => {
    for (const policy of ["ALLOW", "SKIP", "BUFFER_ONE"]) expect(() => validateOverlapPolicy(policy)).not.toThrow();
    for (const policy of ["allow", "BUFFER_ALL", ""]) {
      expectCode(() => validateOverlapPolicy(policy), "job_schedule.invalid_overlap_policy");
    }
    for (const seconds of [0, 60, MAX_CATCHUP_WINDOW_SECONDS]) {
      expect(() => validateCatchupWindowSeconds(seconds)).not.toThrow();
    }
    for (const seconds of [-1, 1.5, MAX_CATCHUP_WINDOW_SECONDS + 1, Number.NaN]) {
      expectCode(() => validateCatchupWindowSeconds(seconds), "job_schedule.invalid_catchup_window");
    }
  });
});

describe("planScheduleFires", () => {
  const base: ScheduleCursor = {
    id: "0190f0a0-0000-7000-8000-000000000001",
    cronExpr: "0 0 * * * *",
    timezone: "UTC",
    maxJitterSeconds: 0,
    overlapPolicy: "ALLOW",
    catchupWindowSeconds: 0,
    nextSlotAt: at("2030-01-01T00:00:00Z"),
    nextFireAt: at("2030-01-01T00:00:00Z"),
    bufferedSlotAt: null,
    lastJobLive: false,
  };
  const now = at("2030-01-01T05:10:00Z");

  it("fires only the latest of several due slots without a catch-up window, counting the rest", () => {
    const plan = planScheduleFires(base, now);
    expect(iso(plan.fire)).toEqual(["2030-01-01T05:00:00.000Z"]);
    expect(plan).toMatchObject({ missed: 5, overlapSkipped: 0, more: false, bufferedSlotAt: null });
    expect(plan.next).toEqual({ slotAt: at("2030-01-01T06:00:00Z"), fireAt: at("2030-01-01T06:00:00Z") });
  });

  it("fires the slots within the window, each once, oldest first", () => {
    const plan = planScheduleFires({ ...base, catchupWindowSeconds: 2 * 3600 }, now);
    expect(iso(plan.fire)).toEqual(["2030-01-01T04:00:00.000Z", "2030-01-01T05:00:00.000Z"]);
    expect(plan.missed).toBe(4);
  });

  it("does nothing before the cursor is due", () => {
    const plan = planScheduleFires(base, at("2029-12-31T23:59:59Z"));
    expect(plan).toMatchObject({ fire: [], missed: 0, overlapSkipped: 0, more: false });
    expect(plan.next).toEqual({ slotAt: base.nextSlotAt, fireAt: base.nextFireAt });
  });

  it("SKIP fires one slot when the previous job is done and none while it is live", () => {
    const window = { ...base, overlapPolicy: "SKIP", catchupWindowSeconds: 86_400 } as const;
    expect(planScheduleFires(window, now)).toMatchObject({ fire: [base.nextSlotAt], overlapSkipped: 5 });
    expect(planScheduleFires({ ...window, lastJobLive: true }, now)).toMatchObject({ fire: [], overlapSkipped: 6 });
  });

  it("BUFFER_ONE holds the first slot while the job is live and releases it once it is not", () => {
    const buffer = { ...base, overlapPolicy: "BUFFER_ONE", catchupWindowSeconds: 86_400, lastJobLive: true } as const;
    const held = planScheduleFires(buffer, now);
    expect(held).toMatchObject({ fire: [], bufferedSlotAt: base.nextSlotAt, overlapSkipped: 5 });
    const later = at("2030-01-01T05:20:00Z");
    const cursor = { ...buffer, nextSlotAt: held.next!.slotAt, nextFireAt: held.next!.fireAt };
    const released = planScheduleFires({ ...cursor, bufferedSlotAt: held.bufferedSlotAt, lastJobLive: false }, later);
    expect(released).toMatchObject({ fire: [base.nextSlotAt], bufferedSlotAt: null, overlapSkipped: 0 });
  });

  it("stops at its limits and says more is due", () => {
    const plan = planScheduleFires({ ...base, catchupWindowSeconds: 86_400 }, now, { maxFires: 2 });
    expect(plan).toMatchObject({ more: true, next: { slotAt: at("2030-01-01T02:00:00Z") } });
    expect(plan.fire).toHaveLength(2);
    const slots = planScheduleFires(base, now, { maxSlots: 3 });
    expect(slots).toMatchObject({ fire: [], missed: 3, more: true, next: { slotAt: at("2030-01-01T03:00:00Z") } });
  });

  it("delays each slot by its jitter without changing the slot", () => {
    const plan = planScheduleFires({ ...base, maxJitterSeconds: 600 }, at("2030-01-01T00:00:00Z"));
    expect(plan.fire).toEqual([base.nextSlotAt]);
    expect(plan.next!.slotAt).toEqual(at("2030-01-01T01:00:00Z"));
    const jitter = plan.next!.fireAt.getTime() - plan.next!.slotAt.getTime();
    expect(jitter).toBeGreaterThanOrEqual(0);
    expect(jitter).toBeLessThanOrEqual(600_000);
  });

  it("reports an exhausted expression with a null next, dropping a slot it could never release", () => {
    const last = at("2030-01-01T00:00:00Z");
    const exhausted = { ...base, cronExpr: "0 0 0 1 1 * 2030", nextSlotAt: last, nextFireAt: last };
    expect(planScheduleFires(exhausted, now)).toMatchObject({ fire: [last], next: null });
    const held = { ...exhausted, overlapPolicy: "BUFFER_ONE", lastJobLive: true } as const;
    expect(planScheduleFires(held, now)).toMatchObject({ fire: [], bufferedSlotAt: null, overlapSkipped: 1 });
  });
});
