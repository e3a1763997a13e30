import { RunledgerError } from "./errors.ts";

/** The outcome of an operation that reports failure as a value instead of throwing. */
export type Result<T, E = RunledgerError> = { ok: true; value: T } | { ok: false; error: E };

/** A successful result carrying `value`. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** A failed result carrying `error`. */
export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/** The value of a successful result; throws the error of a failed one. */
export function unwrap<T, E>(result: Result<T, E>): T {
  if (result.ok) return result.value;
  throw result.error;
}

/**
 * Runs `fn` and captures a thrown `RunledgerError` as a failed result. Anything else that is
 * thrown is a bug, not an outcome, and propagates unchanged.
 */
export function resultOf<T>(fn: () => T): Result<T> {
  try {
    return ok(fn());
  } catch (error) {
    if (error instanceof RunledgerError) return err(error);
    throw error;
  }
}
