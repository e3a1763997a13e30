import { type SQL, sql } from "drizzle-orm";
import { type JobStatus, TERMINAL_JOB_STATUSES } from "../../../core/index.ts";
import type { DbRow } from "../../rows.ts";
import { jobAttemptLog, jobEventLog, type jobQueue } from "../../schema/index.ts";

/** A `job_queue` row as a raw statement returns it (`select *`, `returning *`), typed from the schema. */
export type JobQueueRow = DbRow<typeof jobQueue>;

/** Statuses a cancel applies to: a job not yet finished. */
export const CANCELABLE_JOB_STATUSES = ["PENDING", "LEASED"] as const satisfies readonly JobStatus[];

/** Statuses as an SQL list (`'A', 'B'`): enum literals, so they are written into the text, not bound. */
const statusList = (statuses: readonly JobStatus[]) => sql.raw(statuses.map((status) => `'${status}'`).join(", "));

/** `CANCELABLE_JOB_STATUSES` as an SQL list, rendered once. */
export const cancelableStatuses = statusList(CANCELABLE_JOB_STATUSES);

/** `TERMINAL_JOB_STATUSES` (the ones a requeue applies to) as an SQL list, rendered once. */
export const terminalStatuses = statusList(TERMINAL_JOB_STATUSES);

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
