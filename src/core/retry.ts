import type { JobFailure } from "./handler.ts";
import { uuidToBigInt } from "./uuid.ts";

/** Decides how long to wait before the next attempt of a failed job, in milliseconds (> 0). */
export type RetryPolicy = (input: { attempt: number; jobId: string; jobType: string; failure: JobFailure }) => number;

/** Base of the exponential backoff: attempt n waits about 5 s × 2ⁿ. */
export const RETRY_BASE_DELAY_MS = 5_000;
/** Longest backoff before jitter. */
export const RETRY_MAX_DELAY_MS = 300_000;
/** Shortest delay the default policy ever returns. */
export const RETRY_MIN_DELAY_MS = 1_000;

/**
 * Deterministic jitter in [-500, 499] ms: the job id as an unsigned 128-bit big-endian integer,
 * mod 1000, minus 500. The same job always gets the same jitter.
 */
export function jobIdJitterMs(jobId: string): number {
  return Number(uuidToBigInt(jobId) % 1000n) - 500;
}

/**
 * The default backoff: `max(min(5000 × 2^clamp(attempt, 1, 10), 300000) + jitter(jobId), 1000)`.
 * Attempt 1 ≈ 10 s, 2 ≈ 20 s, 3 ≈ 40 s, 4 ≈ 80 s, 5 ≈ 160 s, 6 and later ≈ 300 s.
 */
export function defaultRetryDelayMs(
  attempt: number,
  jobId: string,
  jitter: (jobId: string) => number = jobIdJitterMs,
): number {
  const exponent = Number.isFinite(attempt) ? Math.min(Math.max(Math.trunc(attempt), 1), 10) : 1;
  const capped = Math.min(RETRY_BASE_DELAY_MS * 2 ** exponent, RETRY_MAX_DELAY_MS);
  return Math.max(capped + jitter(jobId), RETRY_MIN_DELAY_MS);
}

/** `defaultRetryDelayMs` as a `RetryPolicy`. */
export const defaultRetryPolicy: RetryPolicy = ({ attempt, jobId }) => defaultRetryDelayMs(attempt, jobId);
