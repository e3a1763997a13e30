import { describe, expect, it } from "vitest";
import {
  MAX_SCHEDULE_JITTER_SECONDS,
  newId,
  nextCronFire,
  scheduleJitterSeconds,
  validateCronExpression,
  validateJitterSeconds,
  validateScheduleName,
} from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

const at = (iso: string) => new Date(iso);

describe("validateCronExpression", () => {
  it.each([
    "0 0 * * * *",
    "* * * * * *",
    "*/15 * * * * *",
    "0 0 9-17 * * MON-FRI",
    "0 30 8 1,15 * *",
    "0 0 0 1 JAN,jul *",
    "0 0 0 * * sun",
    "0 0 12 ? * WED",
    "0 0 12 1 * ?",
    "0 0 0 * * 0-7",
    "0 0 0 * * 7",
    "0 0 1-23/2 * * *",
    "0 0 0 1 1 * 2030",
    "0 0 0 1 1 * 2030-2040/5",
    "0 0 0 1 1 * *",
    "0\t0 * * * *",
  ])("accepts %j", (expr) => {
    expect(() => validateCronExpression(expr)).not.toThrow();
  });

  it.each([
    ["blank", ""],
    ["only spaces", "   "],
    ["leading whitespace", " 0 0 * * * *"],
    ["trailing whitespace", "0 0 * * * * "],
    ["trailing newline", "0 0 * * * *\n"],
    ["classic 5-field crontab", "0 * * * *"],
    ["too few fields", "0 0 *"],
    ["too many fields", "0 0 0 1 1 * 2030 x"],
    ["nickname", "@hourly"],
    ["second out of range", "60 * * * * *"],
    ["hour out of range", "0 0 24 * * *"],
    ["day of month 0", "0 0 0 0 * *"],
    ["month 13", "0 0 0 1 13 *"],
    ["weekday 8", "0 0 0 * * 8"],
    ["year above 9999", "0 0 0 1 1 * 10000"],
    ["reversed range", "0 0 0 * * 5-1"],
    ["zero step", "*/0 * * * * *"],
    ["numeric step prefix", "5/5 * * * * *"],
    ["garbage", "a b c d e f"],
    ["unknown name", "0 0 0 * FOO *"],
    ["full weekday name", "0 0 0 * * Monday"],
    ["weekday name in the day-of-month field", "0 0 0 MON * *"],
    ["question mark in the seconds field", "? * * * * *"],
    ["last-day extension", "0 0 0 L * *"],
    ["nearest-weekday extension", "0 0 0 15W * *"],
    ["nth-weekday extension", "0 0 0 * * 5#2"],
    ["AND modifier", "0 0 0 * * +MON"],
    ["empty list item", "0 0 0 1,,2 * *"],
  ])("rejects %s (%j) with job_schedule.invalid_cron", (_, expr) => {
    const error = expectCode(() => validateCronExpression(expr), "job_schedule.invalid_cron");
    expect(error.message).toBe("Cron expression is invalid.");
    expect(error.internalMessage()).toContain("job_schedule.invalid_cron");
  });

  it("keeps the message fixed and explains a classic 5-field crontab in details", () => {
    const error = expectCode(() => validateCronExpression("*/5 * * * *"), "job_schedule.invalid_cron");
    expect(error.message).toBe("Cron expression is invalid.");
    expect(error.internalMessage()).toMatch(/got 5/);
    expect(error.details).toEqual({
      fields: 5,
      expected: "sec min hour day-of-month month day-of-week (seconds first, in the schedule's time zone)",
      hint: "prepend a seconds field",
      suggestion: "0 */5 * * * *",
    });
    // The suggestion is itself a valid expression.
    expect(() => validateCronExpression(error.details.suggestion as string)).not.toThrow();
    const four = expectCode(() => validateCronExpression("* * * *"), "job_schedule.invalid_cron");
    expect(four.details).toMatchObject({ fields: 4, expected: expect.stringContaining("seconds first") });
  });

  it("rejects non-strings from untyped callers", () => {
    expectCode(() => validateCronExpression(undefined as unknown as string), "job_schedule.invalid_cron");
  });
});

describe("nextCronFire", () => {
  it("returns the first occurrence strictly after the given instant, in UTC", () => {
    expect(nextCronFire("0 0 * * * *", at("2026-03-01T10:15:00Z"))).toEqual(at("2026-03-01T11:00:00Z"));
    expect(nextCronFire("0 0 12 * * *", at("2026-03-01T12:00:00.000Z"))).toEqual(at("2026-03-02T12:00:00Z"));
    expect(nextCronFire("0 0 12 * * *", at("2026-03-01T11:59:59.999Z"))).toEqual(at("2026-03-01T12:00:00Z"));
    expect(nextCronFire("* * * * * *", at("2026-03-01T12:00:00.000Z"))).toEqual(at("2026-03-01T12:00:01Z"));
    expect(nextCronFire("* * * * * *", at("2026-03-01T12:00:00.400Z"))).toEqual(at("2026-03-01T12:00:01Z"));
  });

  it("ignores the process time zone and daylight saving time", () => {
    // 2026-03-29 is the EU DST switch; UTC has no gap, so 01:30 UTC exists.
    expect(nextCronFire("0 30 1 * * *", at("2026-03-29T00:00:00Z"))).toEqual(at("2026-03-29T01:30:00Z"));
    expect(nextCronFire("0 30 2 * * *", at("2026-03-08T00:00:00Z"))).toEqual(at("2026-03-08T02:30:00Z"));
  });

  it("numbers weekdays like crontab: 0 and 7 are Sunday, 1 is Monday", () => {
    const thursday = at("2026-01-01T00:00:00Z");
    const sunday = at("2026-01-04T00:00:00Z");
    expect(nextCronFire("0 0 0 * * 0", thursday)).toEqual(sunday);
    expect(nextCronFire("0 0 0 * * 7", thursday)).toEqual(sunday);
    expect(nextCronFire("0 0 0 * * SUN", thursday)).toEqual(sunday);
    expect(nextCronFire("0 0 0 * * 1", thursday)).toEqual(at("2026-01-05T00:00:00Z"));
    expect(nextCronFire("0 0 0 * * 6-7", thursday)).toEqual(at("2026-01-03T00:00:00Z"));
  });

  it("requires both day-of-month and day-of-week when both are restricted", () => {
    // Next Friday the 13th after 2026-01-01 is February 13th.
    expect(nextCronFire("0 0 0 13 * FRI", at("2026-01-01T00:00:00Z"))).toEqual(at("2026-02-13T00:00:00Z"));
    expect(nextCronFire("0 0 0 ? * FRI", at("2026-01-01T00:00:00Z"))).toEqual(at("2026-01-02T00:00:00Z"));
    expect(nextCronFire("0 0 0 13 * ?", at("2026-01-01T00:00:00Z"))).toEqual(at("2026-01-13T00:00:00Z"));
  });

  it("handles month names, steps, leap days and the year field", () => {
    expect(nextCronFire("0 0 0 1 MAR *", at("2026-01-01T00:00:00Z"))).toEqual(at("2026-03-01T00:00:00Z"));
    expect(nextCronFire("*/20 * * * * *", at("2026-01-01T00:00:41Z"))).toEqual(at("2026-01-01T00:01:00Z"));
    expect(nextCronFire("0 0 0 29 2 *", at("2026-01-01T00:00:00Z"))).toEqual(at("2028-02-29T00:00:00Z"));
    expect(nextCronFire("0 0 0 1 1 * 2030", at("2026-01-01T00:00:00Z"))).toEqual(at("2030-01-01T00:00:00Z"));
    expect(nextCronFire("0 0 0 1 1 * 2027-2040/5", at("2026-06-01T00:00:00Z"))).toEqual(at("2027-01-01T00:00:00Z"));
    expect(nextCronFire("0 0 0 1 1 * 2027-2040/5", at("2027-06-01T00:00:00Z"))).toEqual(at("2032-01-01T00:00:00Z"));
    expect(nextCronFire("0 0 0 1 1 * */2", at("2026-06-01T00:00:00Z"))).toEqual(at("2028-01-01T00:00:00Z"));
    expect(nextCronFire("0 0 0 1 1 * 2026,2031", at("2026-06-01T00:00:00Z"))).toEqual(at("2031-01-01T00:00:00Z"));
  });

  it("reports expressions with no later occurrence as invalid", () => {
    expectCode(() => nextCronFire("0 0 0 1 1 * 2020", at("2026-01-01T00:00:00Z")), "job_schedule.invalid_cron");
    expectCode(() => nextCronFire("0 0 0 31 2 *", at("2026-01-01T00:00:00Z")), "job_schedule.invalid_cron");
  });

  it("validateCronExpression refuses an expression that matches no date, not one that only matched in the past", () => {
    expectCode(() => validateCronExpression("0 0 0 31 2 *"), "job_schedule.invalid_cron");
    expectCode(() => validateCronExpression("0 0 0 30 2 * 2024-2030"), "job_schedule.invalid_cron");
    expect(() => validateCronExpression("0 0 0 1 1 * 2020")).not.toThrow();
    expect(() => validateCronExpression("0 0 0 29 2 *")).not.toThrow();
  });

  it("rejects invalid expressions and invalid dates", () => {
    expectCode(() => nextCronFire("0 * * * *", at("2026-01-01T00:00:00Z")), "job_schedule.invalid_cron");
    expect(() => nextCronFire("0 0 * * * *", new Date(Number.NaN))).toThrow(TypeError);
  });
});

describe("scheduleJitterSeconds", () => {
  const id = "0190f5a8-3c1e-7b2a-9d4f-1234567890ab";
  const fireAt = at("2026-03-01T11:00:00Z");

  it("is (id as 128-bit integer XOR epoch ms) mod (max + 1)", () => {
    const expected = (max: number) =>
      Number((BigInt(`0x${id.replaceAll("-", "")}`) ^ BigInt(fireAt.getTime())) % BigInt(max + 1));
    for (const max of [1, 7, 59, 3600, 86_400]) {
      expect(scheduleJitterSeconds(id, fireAt, max)).toBe(expected(max));
    }
  });

  it("matches hand-computed values", () => {
    // 0 XOR ms = ms; 1772362800000 mod 61 = 1772362800000 - 61 * 29055127868 = 52
    expect(scheduleJitterSeconds("00000000-0000-0000-0000-000000000000", fireAt, 60)).toBe(
      Number(1772362800000n % 61n),
    );
    expect(scheduleJitterSeconds("00000000-0000-0000-0000-000000000000", at("1970-01-01T00:00:00.007Z"), 10)).toBe(7);
    expect(scheduleJitterSeconds("00000000-0000-0000-0000-000000000005", at("1970-01-01T00:00:00.003Z"), 10)).toBe(6);
  });

  it("reads fire times before 1970 as sign-extended 128-bit integers", () => {
    // -1 ms is 2^128 - 1 as an unsigned 128-bit integer; XOR 0 keeps it; mod 1000 = 455.
    expect(scheduleJitterSeconds("00000000-0000-0000-0000-000000000000", at("1969-12-31T23:59:59.999Z"), 999)).toBe(
      455,
    );
  });

  it("is 0 when max jitter is zero or negative", () => {
    expect(scheduleJitterSeconds(id, fireAt, 0)).toBe(0);
    expect(scheduleJitterSeconds(id, fireAt, -5)).toBe(0);
  });

  it("is deterministic and within [0, max]", () => {
    for (let i = 0; i < 300; i++) {
      const scheduleId = newId();
      const when = new Date(Date.UTC(2026, 0, 1) + i * 60_000);
      const jitter = scheduleJitterSeconds(scheduleId, when, 30);
      expect(Number.isInteger(jitter)).toBe(true);
      expect(jitter).toBeGreaterThanOrEqual(0);
      expect(jitter).toBeLessThanOrEqual(30);
      expect(scheduleJitterSeconds(scheduleId, when, 30)).toBe(jitter);
    }
  });

  it("rejects a schedule id that is not a UUID", () => {
    expectCode(() => scheduleJitterSeconds("nope", fireAt, 10), "identifier.invalid_uuid");
  });
});

describe("schedule field validation", () => {
  it("validateScheduleName accepts trimmed non-blank names", () => {
    expect(() => validateScheduleName("profiles.refresh.hourly")).not.toThrow();
    expect(() => validateScheduleName("a b")).not.toThrow();
  });

  it.each(["", "   ", " leading", "trailing ", "\tx"])("validateScheduleName rejects %j", (name) => {
    expectCode(() => validateScheduleName(name), "job_schedule.invalid_name");
  });

  it("validateJitterSeconds accepts integers 0..86400", () => {
    for (const n of [0, 1, 30, MAX_SCHEDULE_JITTER_SECONDS]) expect(() => validateJitterSeconds(n)).not.toThrow();
  });

  it.each([-1, 86_401, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("validateJitterSeconds rejects %s", (n) => {
    expectCode(() => validateJitterSeconds(n), "job_schedule.invalid_jitter");
  });
});
