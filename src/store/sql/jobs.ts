import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { CANCEL_CHANNEL, JOBS_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { jobAttemptLog, jobEventLog, jobQueue } from "../schema/index.ts";

/*
 * Writing out an attempt that leaves its job row (see "The ledger" in schema/jobs.ts). A job row
 * holds its running or successful attempt; any other ending moves the attempt into
 * job_attempt_log and writes its LEASED event into job_event_log under the id the claim drew, so
 * readers of the views see the same attempt and the same events, in the same order, before and
 * after. `from` is a relation of job rows as the transition found them (their columns before the
 * update, e.g. a `for update` CTE); rows without a held attempt are skipped.
 */

/** How the attempt ended; SQL expressions over `from`'s columns. */
export interface AttemptEnd {
  finishedAt: SQL;
  outcome?: SQL;
  errorCode?: SQL;
  errorMessage?: SQL;
  retryDelayMs?: SQL;
}

/** CTEs `<name>_attempt` and `<name>_leased`: the attempt's log row and its LEASED event. */
export function attemptWrittenOut(name: string, from: SQL, end: AttemptEnd): SQL {
  return sql`${sql.raw(name)}_attempt as (
    insert into ${jobAttemptLog} (id, job_id, run_number, attempt, worker_id, leased_at, started_at, finished_at,
      outcome, error_code, error_message, retry_delay_ms, claim_origin, execution_started_persisted_at, created_at)
    select runledger.attempt_id(leased_at, lease_event_id), id, run_number, attempt, worker_id, leased_at, leased_at,
      ${end.finishedAt}, ${end.outcome ?? sql`null`}::runledger.job_failure_kind, ${end.errorCode ?? sql`null`}::text,
      ${end.errorMessage ?? sql`null`}::text, ${end.retryDelayMs ?? sql`null`}::bigint,
      coalesce(claim_origin, 'DIRECT'), execution_started_at, leased_at
    from ${from} where lease_event_id is not null
  ),
  ${leasedEventWrittenOut(name, from)}`;
}

/** CTE `<name>_leased`: the LEASED event of the attempt a job row holds, as a log row. */
export function leasedEventWrittenOut(name: string, from: SQL): SQL {
  return sql`${sql.raw(name)}_leased as (
    insert into ${jobEventLog} (id, job_id, run_number, attempt, event_type, stage, payload, occurred_at)
    select lease_event_id, id, run_number, attempt, 'LEASED', lease_stage,
      jsonb_build_object('worker_id', worker_id, 'lease_duration_seconds', lease_seconds), leased_at
    from ${from} where lease_event_id is not null
  )`;
}

/** CTE `<name>_succeeded`: the SUCCEEDED event of a successful job row, as a log row (requeue). */
export function succeededEventWrittenOut(name: string, from: SQL): SQL {
  return sql`${sql.raw(name)}_succeeded as (
    insert into ${jobEventLog} (id, job_id, run_number, attempt, event_type, stage, progress_done, progress_total,
      payload, occurred_at)
    select finish_event_id, id, run_number, attempt, 'SUCCEEDED', 'completed', progress_done, progress_total, '{}',
      finished_at
    from ${from} where status = 'SUCCEEDED' and finish_event_id is not null
  )`;
}

/** Assignments that empty a job row's attempt (the row no longer holds one). */
export const noHeldAttempt = sql.raw(`leased_at = null, lease_seconds = null, lease_stage = null, claim_origin = null,
      execution_started_at = null, lease_event_id = null, finish_event_id = null`);

/**
 * Cancel the PENDING or LEASED jobs `which` selects (a condition over `job_queue`, evaluated on
 * rows the caller has locked): each becomes CANCELED, a held attempt is written out of its row as
 * finished, a CANCELED event records `reason`, and running workers hear of it on the
 * `runledger_cancel` channel. Returns the canceled rows; their workflow steps are the caller's.
 */
export async function cancelLockedJobs(tx: Executor, which: SQL, reason: string): Promise<RawRow[]> {
  return queryRows<RawRow>(
    tx,
    sql`
    with target as (
      select * from ${jobQueue} where status in ('PENDING', 'LEASED') and ${which}
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
export async function requeueLockedJobs(tx: Executor, which: SQL, options: RequeueOptions): Promise<RawRow[]> {
  const keep = options.keepProgress === true;
  const event = JSON.stringify({ ...options.event, reason: options.reason });
  return queryRows<RawRow>(
    tx,
    sql`
    with target as (
      select * from ${jobQueue} where status in ('SUCCEEDED', 'DEAD_LETTERED', 'CANCELED') and ${which}
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
