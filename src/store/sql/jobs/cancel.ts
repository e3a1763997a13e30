import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../../db.ts";
import { CANCEL_CHANNEL, JOBS_CHANNEL } from "../../notify.ts";
import { queryRows, statement } from "../../query.ts";
import { jobEventLog, jobQueue } from "../../schema/index.ts";
import {
  attemptWrittenOut,
  cancelableStatuses,
  type JobQueueRow,
  noHeldAttempt,
  succeededEventWrittenOut,
  terminalStatuses,
} from "./ledger.ts";

/*
 * Cancel and requeue: the single-job rules, applied to the jobs a condition selects among rows the
 * caller has locked, so one job (jobs/cancel.ts), a bulk batch (jobs/bulk.ts) and a workflow run's
 * jobs (workflows/) go through the same statement, built per call around the caller's condition.
 */

/** The one job `id`, as a cancel's or requeue's condition. */
export function byId(jobId: string): SQL {
  return sql`id = ${jobId}`;
}

/**
 * Lock one job visible in a scope (`visible`, a condition over `organization_id`), for a single
 * cancel or requeue to check its status before it applies the rule. Rows: `JobQueueRow`.
 */
export function lockJobInScope(jobId: string, visible: SQL): SQL {
  return sql`select * from ${jobQueue} where id = ${jobId} and ${visible} for update`;
}

/**
 * Which of `ids` (an array literal of checked uuids) are CANCELED. A worker asks before it aborts a
 * handler on a cancel notification: any database user can send one.
 */
export const canceledAmong = statement<{ id: string }>(
  "runledger_canceled_jobs",
  sql`select id from ${jobQueue} where id = any(${sql.placeholder("ids")}::uuid[]) and status = 'CANCELED'`,
);

/**
 * Cancel the PENDING or LEASED jobs `which` selects (a condition over `job_queue`, evaluated on
 * rows the caller has locked): each becomes CANCELED, a held attempt is written out of its row as
 * finished, a CANCELED event records `reason`, and running workers hear of it on the
 * `runledger_cancel` channel. Returns the canceled rows; their workflow steps are the caller's.
 */
export async function cancelLockedJobs(tx: Executor, which: SQL, reason: string): Promise<JobQueueRow[]> {
  return queryRows<JobQueueRow>(
    tx,
    sql`
    with target as (
      select * from ${jobQueue} where status in (${cancelableStatuses}) and ${which}
    ),
    canceled as (
      update ${jobQueue} j set status = 'CANCELED', finished_at = now(), worker_id = null, last_heartbeat_at = null,
        lease_expires_at = null, status_reason = ${reason}, ${noHeldAttempt}, updated_at = now()
      from target t
      where j.id = t.id
      returning j.*
    ),
    ${attemptWrittenOut("leased", sql`(select * from target where status = 'LEASED') t`, { finishedAt: sql`now()` })},
    events as (
      insert into ${jobEventLog} (job_id, run_number, attempt, event_type, stage, payload)
      select id, run_number, nullif(attempt, 0), 'CANCELED', stage, jsonb_build_object('reason', ${reason}::text)
      from canceled
    )
    select *, pg_notify(${CANCEL_CHANNEL}, id::text) from canceled`,
  );
}

/** How `requeueLockedJobs` records the new runs. */
export interface RequeueOptions {
  /** The jobs' `status_reason` and the REQUEUED events' `reason`. */
  reason: string;
  /** Keep progress and checkpoint, so a handler can resume (default: cleared, a fresh run). */
  keepProgress?: boolean;
  /** More keys for the REQUEUED events' payload (e.g. what requeued them). */
  event?: Record<string, unknown>;
}

/**
 * Requeue the finished jobs (SUCCEEDED, DEAD_LETTERED or CANCELED) `which` selects (a condition
 * over `job_queue`, evaluated on rows the caller has locked) as new runs: run number + 1,
 * attempt 0, stage `queued`, due now, errors cleared, and a REQUEUED event each. A succeeded
 * run's attempt and SUCCEEDED event leave the row (its other attempts already did). Workers are
 * woken once. Returns the requeued rows; their workflow steps are the caller's.
 */
export async function requeueLockedJobs(tx: Executor, which: SQL, options: RequeueOptions): Promise<JobQueueRow[]> {
  const keep = options.keepProgress === true;
  const event = JSON.stringify({ ...options.event, reason: options.reason });
  return queryRows<JobQueueRow>(
    tx,
    sql`
    with target as (
      select * from ${jobQueue} where status in (${terminalStatuses}) and ${which}
    ),
    requeued as (
      update ${jobQueue} j set status = 'PENDING', stage = 'queued',
        progress_done = case when ${keep}::boolean then j.progress_done end,
        progress_total = case when ${keep}::boolean then j.progress_total end,
        checkpoint = case when ${keep}::boolean then j.checkpoint end,
        run_number = j.run_number + 1, attempt = 0, lease_expires_at = null, last_heartbeat_at = null,
        worker_id = null, next_run_at = now(), started_at = null, finished_at = null, status_reason = ${options.reason},
        last_error_code = null, last_error_message = null, ${noHeldAttempt}, updated_at = now()
      from target t
      where j.id = t.id
      returning j.*
    ),
    ${attemptWrittenOut("succeeded", sql`(select * from target where status = 'SUCCEEDED') t`, { finishedAt: sql`finished_at` })},
    ${succeededEventWrittenOut("target", sql`target`)},
    events as (
      insert into ${jobEventLog} (job_id, run_number, event_type, stage, payload)
      select id, run_number, 'REQUEUED', stage, ${event}::jsonb from requeued
    ),
    notified as (
      select count(pg_notify(${JOBS_CHANNEL}, '')) as n from (select 1 from requeued limit 1) x
    )
    select r.* from requeued r cross join notified`,
  );
}
