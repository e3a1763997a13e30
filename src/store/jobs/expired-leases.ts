import { RunledgerError, WORKER_FAILURE_CODES } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { deferExpiredLease, lockExpiredLeases } from "../sql/jobs/expired-leases.ts";
import { fail, isDelayMs, isInt32, isValidDate } from "../validate.ts";
import { recordFailure } from "./complete.ts";
import { releaseUnstartedJobClaim } from "./lease.ts";
import type { LeaseIdentity } from "./lease-identity.ts";

/** The error message a LEASE_EXPIRED failure records. */
export const LEASE_EXPIRED_MESSAGE = "Job lease expired before completion.";
/** The reason recorded on a prestart claim returned because its lease ran out before it started. */
export const RELEASED_BEFORE_RUNNING = "LEASE_EXPIRED_BEFORE_RUNNING_PERSISTED";

/** A job the reaper dead-lettered, for the runtime's dead-letter hooks. */
export interface ReapedDeadLetter {
  jobId: string;
  jobType: string;
  organizationId: string | null;
  runNumber: number;
  attempt: number;
  maxAttempts: number;
  payload: unknown;
}

export interface ReapResult {
  /** Expired leases handled in this pass. */
  processed: number;
  /** Prestart claims returned without consuming an attempt. */
  released: number;
  /** Jobs put back to PENDING after the retry delay. */
  retried: number;
  deadLettered: ReapedDeadLetter[];
  /** Rows whose processing failed; their lease deadline was pushed forward by the retry delay. */
  deferred: number;
}

/**
 * Recover jobs whose lease ran out by `now` (the database's clock unless given; spec §5.8), oldest
 * expiry first, in one transaction: an unstarted prestart claim is returned without consuming an
 * attempt; otherwise the attempt fails as LEASE_EXPIRED and the job retries after `retryDelayMs`
 * or, with no attempts left, is dead-lettered. Each row runs in a savepoint: a row that fails is
 * skipped and its deadline pushed `retryDelayMs` past `now`, so one poison row cannot block the
 * batch. Concurrent reapers skip each other's rows.
 */
export async function reapExpiredLeases(
  executor: Executor,
  options: {
    limit: number;
    retryDelayMs: number;
    /** Recover the leases expired at this time instead of the database's now (tests, replays). */
    now?: Date;
  },
): Promise<ReapResult> {
  if (!isInt32(options.limit) || options.limit <= 0) fail("job.invalid_pagination", { field: "limit" });
  if (!isDelayMs(options.retryDelayMs) || options.retryDelayMs <= 0) fail("job.invalid_retry_delay");
  if (options.now !== undefined && !isValidDate(options.now)) fail("job.invalid_pagination", { field: "now" });
  const result: ReapResult = { processed: 0, released: 0, retried: 0, deadLettered: [], deferred: 0 };
  await translating(() =>
    executor.transaction(async (tx) => {
      const expired = await lockExpiredLeases.run(tx, { limit: options.limit, now: options.now });
      for (const row of expired) {
        const lease: LeaseIdentity = {
          jobId: row.id,
          runNumber: Number(row.run_number),
          attempt: Number(row.attempt),
          workerId: row.worker_id,
        };
        try {
          await tx.transaction(async (savepoint) => {
            if (row.unstarted_prestart && (await returnedUnstarted(savepoint, lease))) {
              result.released++;
              return;
            }
            const outcome = await recordFailure(
              savepoint,
              {
                lease,
                kind: "LEASE_EXPIRED",
                code: WORKER_FAILURE_CODES.leaseExpired,
                message: LEASE_EXPIRED_MESSAGE,
                retryDelayMs: options.retryDelayMs,
              },
              false,
            );
            if (outcome.outcome === "RETRY_SCHEDULED") result.retried++;
            else
              result.deadLettered.push({
                jobId: row.id,
                jobType: row.job_type,
                organizationId: row.organization_id,
                runNumber: lease.runNumber,
                attempt: lease.attempt,
                maxAttempts: Number(row.max_attempts),
                payload: row.payload,
              });
          });
          result.processed++;
        } catch {
          result.deferred++;
          await deferExpiredLease.run(tx, { id: row.id, delayMs: options.retryDelayMs, now: options.now });
        }
      }
    }),
  );
  return result;
}

/** Return an unstarted prestart claim; false when the attempt had started after all. */
async function returnedUnstarted(tx: Executor, lease: LeaseIdentity): Promise<boolean> {
  try {
    await releaseUnstartedJobClaim(tx, { lease, reason: RELEASED_BEFORE_RUNNING, retryDelayMs: 0 });
    return true;
  } catch (error) {
    if (error instanceof RunledgerError && error.code === "job.unstarted_claim_release_not_applicable") return false;
    throw error;
  }
}
