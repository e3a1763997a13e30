import { expect } from "vitest";
import { type ErrorCode, RunledgerError } from "../../src/core/index.ts";

/** Runs `fn`, asserts it throws a RunledgerError with `code`, and returns the error. */
export function expectCode(fn: () => unknown, code: ErrorCode): RunledgerError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected ${code} to be thrown`).toBeInstanceOf(RunledgerError);
  const error = thrown as RunledgerError;
  expect(error.code).toBe(code);
  return error;
}
