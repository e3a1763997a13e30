import { describe, expect, it } from "vitest";
import { defaultRetryDelayMs, defaultRetryPolicy, JobFailure, jobIdJitterMs, newId } from "../../src/core/index.ts";
import { expectCode } from "./helpers.ts";

const ZERO = () => 0;

describe("defaultRetryDelayMs", () => {
  it("doubles from 10 s and caps at 300 s (no jitter)", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 10, 11, 1000].map((attempt) => defaultRetryDelayMs(attempt, "ignored", ZERO));
    expect(delays).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000, 300_000]);
  });

  it("treats attempts below 1 as attempt 1", () => {
    expect(defaultRetryDelayMs(0, "x", ZERO)).toBe(10_000);
    expect(defaultRetryDelayMs(-5, "x", ZERO)).toBe(10_000);
    expect(defaultRetryDelayMs(Number.NaN, "x", ZERO)).toBe(10_000);
  });

  it("adds the injected jitter exactly", () => {
    expect(defaultRetryDelayMs(1, "x", () => -500)).toBe(9_500);
    expect(defaultRetryDelayMs(1, "x", () => 499)).toBe(10_499);
    expect(defaultRetryDelayMs(6, "x", () => 250)).toBe(300_250);
  });

  it("never returns less than 1000 ms", () => {
    expect(defaultRetryDelayMs(1, "x", () => -20_000)).toBe(1_000);
  });

  it("passes the job id to the jitter function", () => {
    const seen: string[] = [];
    defaultRetryDelayMs(1, "job-1", (id) => {
      seen.push(id);
      return 0;
    });
    expect(seen).toEqual(["job-1"]);
  });
});

describe("jobIdJitterMs", () => {
  it("is the id as a 128-bit big-endian integer mod 1000, minus 500", () => {
    expect(jobIdJitterMs("00000000-0000-0000-0000-000000000000")).toBe(-500);
    expect(jobIdJitterMs("00000000-0000-0000-0000-0000000003e7")).toBe(499); // 999
    expect(jobIdJitterMs("00000000-0000-0000-0000-0000000003e8")).toBe(-500); // 1000
    // 2^128 - 1 = 340282366920938463463374607431768211455 → mod 1000 = 455
    expect(jobIdJitterMs("ffffffff-ffff-ffff-ffff-ffffffffffff")).toBe(-45);
    // Hyphens and case do not matter.
    expect(jobIdJitterMs("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")).toBe(-45);
    const id = "0190f5a8-3c1e-7b2a-9d4f-1234567890ab";
    expect(jobIdJitterMs(id)).toBe(Number(BigInt(`0x${id.replaceAll("-", "")}`) % 1000n) - 500);
  });

  it("is deterministic per job and stays within [-500, 499]", () => {
    for (let i = 0; i < 500; i++) {
      const id = newId();
      const jitter = jobIdJitterMs(id);
      expect(jitter).toBeGreaterThanOrEqual(-500);
      expect(jitter).toBeLessThanOrEqual(499);
      expect(jobIdJitterMs(id)).toBe(jitter);
      expect(defaultRetryDelayMs(3, id)).toBe(40_000 + jitter);
    }
  });

  it("rejects ids that are not UUIDs", () => {
    expectCode(() => jobIdJitterMs("not-a-uuid"), "identifier.invalid_uuid");
    expectCode(() => jobIdJitterMs("0190f5a8-3c1e-7b2a-9d4f-1234567890a"), "identifier.invalid_uuid");
  });
});

describe("defaultRetryPolicy", () => {
  it("is defaultRetryDelayMs over the policy input", () => {
    const jobId = newId();
    const delay = defaultRetryPolicy({ attempt: 2, jobId, jobType: "t", failure: JobFailure.retryable("c", "m") });
    expect(delay).toBe(defaultRetryDelayMs(2, jobId));
  });
});
