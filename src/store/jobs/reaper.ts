import { sql } from "drizzle-orm";
import { RunledgerError, WORKER_FAILURE_CODES } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import { jobQueue } from "../schema/index.ts";
import { fail, isDelayMs, isInt32 } from "../validate.ts";
import { recordFailure } from "./complete.ts";
import { releaseUnstartedJobClaim } from "./lease.ts";
import type { LeaseIdentity } from "./record.ts";

export const LEASE_EXPIRED_MESSAGE = "Job lease expired before completion.";
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
  /** Prestart claims handed back without consuming an attempt. */
  released: number;
  /** Jobs put back to PENDING after the retry delay. */
  retried: number;
  deadLettered: ReapedDeadLetter[];
  /** Rows whose processing failed; their lease deadline was pushed forward by the retry delay. */
  deferred: number;
}

interface ExpiredRow {
  id: string;
  job_type: string;
  organization_id: string | null;
  run_number: number;
  attempt: number;
  max_attempts: number;
  worker_id: string;
  payload: unknown;
  unstarted_prestart: boolean;
}

/**
 * Recover jobs whose lease ran out (spec §5.8), oldest expiry first, in one transaction: an
 * unstarted prestart claim is handed back without consuming an attempt; otherwise the attempt
 * fails as LEASE_EXPIRED and the job retries after `retryDelayMs` or, with no attempts left, is
 * dead-lettered. Each row runs in a savepoint: a row that fails is skipped and its deadline
 * pushed forward, so one poison row cannot block the batch. Concurrent reapers skip each
 * other's rows.
 */
export async function reapExpiredLeases(
  executor: Executor,
  options: { limit: number; retryDelayMs: number },
): Promise<ReapResult> {
  if (!isInt32(options.limit) || options.limit <= 0) fail("job.invalid_pagination", { field: "limit" });
  if (!isDelayMs(options.retryDelayMs) || options.retryDelayMs <= 0) fail("job.invalid_retry_delay");
  const result: ReapResult = { processed: 0, released: 0, retried: 0, deadLettered: [], deferred: 0 };
  try {
    await executor.transaction(async (tx) => {
      const expired = await queryRows<ExpiredRow>(
        tx,
        sql`
        select j.id, j.job_type, j.organization_id, j.run_number, j.attempt, j.max_attempts, j.worker_id, j.payload,
          coalesce(j.claim_origin = 'WORKER_PRESTART' and j.execution_started_at is null, false) as unstarted_prestart
        from ${jobQueue} j
        -- No lease index (the claim's update would not be HOT): unfinished jobs through the claim index.
        where j.finished_at is null and j.status = 'LEASED' and j.lease_expires_at < now()
        order by j.lease_expires_at, j.id
        limit ${options.limit}
        for update of j skip locked`,
      );
      for (const row of expired) {
        const lease: LeaseIdentity = {
          jobId: row.id,
          runNumber: Number(row.run_number),
          attempt: Number(row.attempt),
          workerId: row.worker_id,
        };
        try {
          await tx.transaction(async (savepoint) => {
            if (row.unstarted_prestart && (await releasedUnstarted(savepoint, lease))) {
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
          await tx.execute(
            sql`update ${jobQueue} set lease_expires_at = now() + make_interval(secs => ${options.retryDelayMs}::double precision / 1000), updated_at = now() where id = ${row.id}`,
          );
        }
      }
    });
    return result;
  } catch (error) {
    throw toQueryError(error);
  }
}

async function releasedUnstarted(tx: Executor, lease: LeaseIdentity): Promise<boolean> {
  try {
    await releaseUnstartedJobClaim(tx, { lease, reason: RELEASED_BEFORE_RUNNING, retryDelayMs: 0 });
    return true;
  } catch (error) {
    if (error instanceof RunledgerError && error.code === "job.unstarted_claim_release_not_applicable") return false;
    throw error;
  }
}
