import { describe, expect, it } from "vitest";
import {
  deadLetterReason,
  JOB_FAILURE_KINDS,
  JobFailure,
  type JobFailureKind,
  MAX_ERROR_MESSAGE_BYTES,
} from "../../src/core/index.ts";

describe("JobFailure constructors", () => {
  it("retryable carries kind, code, message and an optional delay", () => {
    const failure = JobFailure.retryable("mail.smtp_down", "SMTP unavailable", { retryAfterMs: 1500 });
    expect(failure).toBeInstanceOf(Error);
    expect(failure).toMatchObject({
      name: "JobFailure",
      kind: "RETRYABLE",
      code: "mail.smtp_down",
      message: "SMTP unavailable",
      retryAfterMs: 1500,
    });
    expect(JobFailure.retryable("c", "m").retryAfterMs).toBeUndefined();
  });

  it("rejects a non-positive or non-finite retryAfterMs", () => {
    for (const retryAfterMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => JobFailure.retryable("c", "m", { retryAfterMs })).toThrow(RangeError);
    }
  });

  it("terminal, timeout, leaseExpired and panicked", () => {
    expect(JobFailure.terminal("bad.input", "no")).toMatchObject({
      kind: "TERMINAL",
      code: "bad.input",
      message: "no",
    });
    expect(JobFailure.timeout()).toMatchObject({
      kind: "TIMEOUT",
      code: "job.timeout_exceeded",
      message: "Job exceeded the configured timeout.",
    });
    expect(JobFailure.leaseExpired()).toMatchObject({
      kind: "LEASE_EXPIRED",
      code: "job.lease_expired",
      message: "Job lease expired before completion.",
    });
    expect(JobFailure.panicked()).toMatchObject({ kind: "PANICKED", code: "job.handler_panic" });
    expect(JobFailure.timeout("x.slow", "too slow")).toMatchObject({ code: "x.slow", message: "too slow" });
  });
});

describe("JobFailure.from", () => {
  it("passes a JobFailure through unchanged", () => {
    const failure = JobFailure.terminal("a", "b");
    expect(JobFailure.from(failure)).toBe(failure);
  });

  it("turns an Error into PANICKED with its message and keeps it as cause", () => {
    const error = new TypeError("x is undefined");
    const failure = JobFailure.from(error);
    expect(failure.kind).toBe("PANICKED");
    expect(failure.code).toBe("job.handler_panic");
    expect(failure.message).toBe("Job handler panicked: x is undefined");
    expect(failure.cause).toBe(error);
  });

  it.each([
    ["a string", "boom", "Job handler panicked: boom"],
    ["a number", 42, "Job handler panicked: 42"],
    ["undefined", undefined, "Job handler panicked: undefined"],
    ["null", null, "Job handler panicked: null"],
    ["a plain object", { a: 1 }, "Job handler panicked: [object Object]"],
  ])("describes %s with String(value)", (_, thrown, message) => {
    expect(JobFailure.from(thrown)).toMatchObject({ kind: "PANICKED", code: "job.handler_panic", message });
  });

  it("survives values that cannot be turned into a string", () => {
    const failure = JobFailure.from(Object.create(null));
    expect(failure.kind).toBe("PANICKED");
    expect(failure.message).toMatch(/^Job handler panicked: /);
  });

  it("survives a proxy whose every trap throws", () => {
    const trap = () => {
      throw new Error("trap");
    };
    const failure = JobFailure.from(new Proxy({}, { getPrototypeOf: trap, get: trap }));
    expect(failure.kind).toBe("PANICKED");
    expect(failure.code).toBe("job.handler_panic");
  });

  it("cuts huge messages to MAX_ERROR_MESSAGE_BYTES with a marker, without splitting a surrogate pair", () => {
    const failure = JobFailure.from(new Error("x".repeat(10_000)));
    expect(Buffer.byteLength(failure.message)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(failure.message).toMatch(/x… \[truncated \d+ bytes\]$/);

    const emoji = JobFailure.from(new Error("😀".repeat(5_000)));
    expect(Buffer.byteLength(emoji.message)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(emoji.message.isWellFormed(), "no lone surrogate").toBe(true);
  });
});

describe("deadLetterReason", () => {
  it("dead-letters TERMINAL and PANICKED at once, whatever the attempt", () => {
    expect(deadLetterReason("TERMINAL", 1, 5)).toBe("FAILURE_KIND_NON_RETRYABLE");
    expect(deadLetterReason("PANICKED", 1, 5)).toBe("FAILURE_KIND_NON_RETRYABLE");
    expect(deadLetterReason("PANICKED", 5, 5)).toBe("FAILURE_KIND_NON_RETRYABLE");
  });

  it.each(["RETRYABLE", "TIMEOUT", "LEASE_EXPIRED"] as const)("retries %s until attempts are exhausted", (kind) => {
    expect(deadLetterReason(kind, 1, 3)).toBeNull();
    expect(deadLetterReason(kind, 2, 3)).toBeNull();
    expect(deadLetterReason(kind, 3, 3)).toBe("ATTEMPTS_EXHAUSTED");
    expect(deadLetterReason(kind, 4, 3)).toBe("ATTEMPTS_EXHAUSTED");
  });

  it("agrees with the retryable kinds for every kind", () => {
    const retryable: readonly JobFailureKind[] = ["RETRYABLE", "TIMEOUT", "LEASE_EXPIRED"];
    for (const kind of JOB_FAILURE_KINDS) {
      expect(deadLetterReason(kind, 1, 10) === null).toBe(retryable.includes(kind));
    }
  });
});
