import { sql } from "drizzle-orm";
import { statement } from "../../query.ts";
import { jobDeadLetters, jobEventLog, jobQueue, workflowSteps } from "../../schema/index.ts";
import { fenced, liveLease } from "./fence.ts";
import { attemptWrittenOut, type JobQueueRow, noHeldAttempt } from "./ledger.ts";

/** What `failStatement` decided for the job its fence matched. */
export type FailureRow = Pick<JobQueueRow, "id" | "workflow_step_id"> & {
  path: "dead" | "retry" | "invalid_delay";
  /** The retry's run-at; null unless `path` is `retry`. */
  next_run_at: JobQueueRow["next_run_at"] | null;
};

/*
 * Completions are the other half of the hot path. Many successes from one worker are written by
 * one statement, so a worker flushing every few milliseconds pays one round trip per batch rather
 * than per job, and that statement writes only the job rows: the successful attempt and its
 * SUCCEEDED event are the row itself (see "The ledger" in schema/jobs.ts; the event's id is drawn
 * here). Jobs that back a workflow step are excluded from it: a batch of them completes in one
 * transaction that also settles the steps and releases their dependents (see
 * workflows/settle.ts); a single completion is the same transaction with one item.
 *
 * Planner-proof: the ids drive primary-key lookups and the fence is checked per row against a
 * jsonb map (id → "run:attempt:worker"). A join with the input let the planner, with statistics
 * taken while few jobs were leased, scan every leased row per input row: one 1,000-item batch took
 * 33 s and leases ran out under the handlers that had finished.
 */
export const succeed = statement<Pick<JobQueueRow, "id" | "workflow_step_id">>(
  "runledger_complete_jobs_success",
  sql`
  update ${jobQueue} j set
    status = 'SUCCEEDED',
    lease_expires_at = null,
    last_heartbeat_at = null,
    finished_at = now(),
    stage = 'completed',
    progress_done = coalesce((${sql.placeholder("extras")}::jsonb -> j.id::text ->> 'progress_done')::bigint, j.progress_done),
    progress_total = coalesce((${sql.placeholder("extras")}::jsonb -> j.id::text ->> 'progress_total')::bigint, j.progress_total),
    checkpoint = case when ${sql.placeholder("extras")}::jsonb -> j.id::text ? 'checkpoint'
      then ${sql.placeholder("extras")}::jsonb -> j.id::text -> 'checkpoint' else j.checkpoint end,
    status_reason = null,
    last_error_code = null,
    last_error_message = null,
    finish_event_id = nextval('runledger.job_events_id_seq'),
    updated_at = now()
  where ${fenced} and ${liveLease}
    and (j.workflow_step_id is null or not ${sql.placeholder("plainOnly")}::boolean)
  returning j.id, j.workflow_step_id
`,
);

/*
 * One statement decides retry or dead letter from the locked row (TERMINAL and PANICKED never
 * retry; otherwise the attempt budget decides), updates the job, writes the attempt out of the
 * job row with its outcome (and its LEASED event), writes FAILED plus RETRY_SCHEDULED or
 * DEAD_LETTERED, upserts the dead letter and moves a retried workflow step back to ENQUEUED. A
 * retry without a positive delay changes nothing. A dead-lettered job's stage becomes `failed`.
 */
export const failStatement = statement<FailureRow>(
  "runledger_complete_job_failure",
  sql`
  with target as (
    select j.*,
      case
        when ${sql.placeholder("kind")}::text in ('TERMINAL', 'PANICKED') or j.attempt >= j.max_attempts then 'dead'
        when coalesce(${sql.placeholder("delayMs")}::double precision, 0) <= 0 then 'invalid_delay'
        else 'retry'
      end as path
    from ${jobQueue} j
    where ${fenced} and j.status = 'LEASED'
      and (not ${sql.placeholder("requireLive")}::boolean or j.lease_expires_at > clock_timestamp())
      and (j.workflow_step_id is null or not ${sql.placeholder("plainOnly")}::boolean)
    for update of j
  ),
  ended as (select * from target where path <> 'invalid_delay'),
  failed as (
    update ${jobQueue} j set
      status = case when t.path = 'dead' then 'DEAD_LETTERED' else 'PENDING' end::runledger.job_status,
      lease_expires_at = null,
      last_heartbeat_at = null,
      worker_id = null,
      next_run_at = case when t.path = 'retry'
        then now() + make_interval(secs => ${sql.placeholder("delayMs")}::double precision / 1000) else j.next_run_at end,
      finished_at = case when t.path = 'dead' then now() else j.finished_at end,
      stage = case when t.path = 'dead' then 'failed' else j.stage end,
      status_reason = ${sql.placeholder("kind")}::text,
      last_error_code = ${sql.placeholder("code")}::text,
      last_error_message = ${sql.placeholder("message")}::text,
      ${noHeldAttempt},
      updated_at = now()
    from ended t
    where j.id = t.id
    returning j.id, j.run_number, j.attempt, j.next_run_at, j.stage, t.path
  ),
  ${attemptWrittenOut("ended", sql`ended`, {
    finishedAt: sql`now()`,
    outcome: sql`${sql.placeholder("kind")}`,
    errorCode: sql`${sql.placeholder("code")}`,
    errorMessage: sql`${sql.placeholder("message")}`,
    retryDelayMs: sql`case when path = 'retry' then ${sql.placeholder("delayMs")}::bigint end`,
  })},
  events as (
    insert into ${jobEventLog} (job_id, run_number, attempt, event_type, stage, payload)
    select id, run_number, attempt, 'FAILED'::runledger.job_event_type, stage,
      jsonb_build_object('kind', ${sql.placeholder("kind")}::text, 'error_code', ${sql.placeholder("code")}::text,
        'error_message', ${sql.placeholder("message")}::text)
    from ended
    union all
    select id, run_number, attempt,
      case when path = 'dead' then 'DEAD_LETTERED' else 'RETRY_SCHEDULED' end::runledger.job_event_type, stage,
      case when path = 'dead'
        then jsonb_build_object('kind', ${sql.placeholder("kind")}::text, 'error_code', ${sql.placeholder("code")}::text)
        else jsonb_build_object('retry_delay_ms', ${sql.placeholder("delayMs")}::bigint, 'next_run_at', next_run_at)
          || case when ${sql.placeholder("kind")}::text = 'LEASE_EXPIRED'
               then jsonb_build_object('kind', 'LEASE_EXPIRED') else '{}'::jsonb end
      end
    from failed
  ),
  dead_letters as (
    insert into ${jobDeadLetters} (job_id, job_type, organization_id, run_number, attempt, error_code, error_message,
      payload_snapshot, checkpoint_snapshot, failed_at)
    select id, job_type, organization_id, run_number, attempt, ${sql.placeholder("code")}::text,
      ${sql.placeholder("message")}::text, payload, checkpoint, now()
    from ended where path = 'dead'
    on conflict (job_id) do update set
      job_type = excluded.job_type, organization_id = excluded.organization_id, run_number = excluded.run_number,
      attempt = excluded.attempt, error_code = excluded.error_code, error_message = excluded.error_message,
      payload_snapshot = excluded.payload_snapshot, checkpoint_snapshot = excluded.checkpoint_snapshot,
      failed_at = excluded.failed_at
  ),
  steps as (
    update ${workflowSteps} s set
      status = 'ENQUEUED',
      status_reason = ${sql.placeholder("kind")}::text,
      last_error_code = ${sql.placeholder("code")}::text,
      last_error_message = ${sql.placeholder("message")}::text
    where s.id = any(array(select workflow_step_id from ended where path = 'retry' and workflow_step_id is not null))
      and s.status in ('RUNNING', 'ENQUEUED')
  )
  select t.path, t.id, t.workflow_step_id, f.next_run_at
  from target t left join failed f on f.id = t.id
`,
);
