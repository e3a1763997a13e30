import { sql } from "drizzle-orm";
import { statement } from "../../query.ts";
import { jobEventLog, jobQueue, workflowSteps } from "../../schema/index.ts";
import { fenced, liveLease } from "./fence.ts";
import { type JobQueueRow, leasedEventWrittenOut, noHeldAttempt } from "./ledger.ts";

/*
 * Writes a worker makes while it holds leases, each one statement fenced by the leases: extend
 * them (heartbeat), record progress, and return claims it never started.
 */

/**
 * Extend every fenced lease still live by `leaseSeconds` from now, with a HEARTBEAT event each;
 * a lost lease is simply absent from the result. One statement for all of a worker's leases.
 */
export const heartbeat = statement<{
  job_id: JobQueueRow["id"];
  lease_expires_at: NonNullable<JobQueueRow["lease_expires_at"]>;
}>(
  "runledger_heartbeat_jobs",
  sql`
  with beat as (
    update ${jobQueue} j set
      lease_expires_at = now() + make_interval(secs => ${sql.placeholder("leaseSeconds")}::int),
      last_heartbeat_at = now(),
      updated_at = now()
    where ${fenced} and ${liveLease}
    returning j.id, j.run_number, j.attempt, j.worker_id, j.lease_expires_at
  ),
  events as (
    insert into ${jobEventLog} (job_id, run_number, attempt, event_type, payload)
    select id, run_number, attempt, 'HEARTBEAT', jsonb_build_object('worker_id', worker_id) from beat
  )
  select id as job_id, lease_expires_at from beat
`,
);

/**
 * Record stage, progress and checkpoint for one live lease: one statement that also persists the
 * execution start (stage `running`) and writes the STAGE_CHANGED and PROGRESS events it implies.
 */
export const progress = statement<{ id: string }>(
  "runledger_update_job_progress",
  sql`
  with updated as (
    update ${jobQueue} j set
      stage = coalesce(${sql.placeholder("stage")}::text, j.stage),
      progress_done = coalesce(${sql.placeholder("done")}::bigint, j.progress_done),
      progress_total = coalesce(${sql.placeholder("total")}::bigint, j.progress_total),
      checkpoint = case when ${sql.placeholder("hasCheckpoint")}::boolean
        then ${sql.placeholder("checkpoint")}::jsonb else j.checkpoint end,
      -- Stage running persists the attempt's execution start (once).
      execution_started_at = case when ${sql.placeholder("stage")}::text = 'running'
        then coalesce(j.execution_started_at, now()) else j.execution_started_at end,
      updated_at = now()
    where ${fenced} and ${liveLease}
    returning j.id, j.run_number, j.attempt, j.stage, j.progress_done, j.progress_total
  ),
  events as (
    insert into ${jobEventLog} (job_id, run_number, attempt, event_type, stage, progress_done, progress_total)
    select id, run_number, attempt, 'STAGE_CHANGED'::runledger.job_event_type, stage, null::bigint, null::bigint
    from updated where ${sql.placeholder("stage")}::text is not null
    union all
    select id, run_number, attempt, 'PROGRESS', stage, progress_done, progress_total
    from updated where ${sql.placeholder("hasProgress")}::boolean
  )
  select id from updated
`,
);

/*
 * Return claims without consuming their attempts: the attempt a row holds is dropped (its
 * LEASED event stays, written out to the log, as the audit trail of the claim), the job is
 * PENDING again at the attempt number it had, and REQUEUED records why. With `requirePrestart`
 * only attempts claimed as prestart whose execution start was never persisted qualify (spec
 * §5.7); the lease may have expired (expired-lease recovery returns such claims). One statement
 * for one claim or a worker's whole local queue at shutdown.
 */
export const returnClaims = statement<{ id: string }>(
  "runledger_return_unstarted_claims",
  sql`
  with target as (
    select j.* from ${jobQueue} j
    where ${fenced} and j.status = 'LEASED'
      and (not ${sql.placeholder("requirePrestart")}::boolean
        or (j.claim_origin = 'WORKER_PRESTART' and j.execution_started_at is null))
    for update of j
  ),
  returned as (
    update ${jobQueue} j set
      status = 'PENDING',
      attempt = j.attempt - 1,
      lease_expires_at = null,
      last_heartbeat_at = null,
      worker_id = null,
      next_run_at = now() + make_interval(secs => ${sql.placeholder("delayMs")}::double precision / 1000),
      started_at = case when t.attempt = 1 then null else j.started_at end,
      status_reason = ${sql.placeholder("reason")}::text,
      last_error_code = null,
      last_error_message = null,
      ${noHeldAttempt},
      updated_at = now()
    from target t
    where j.id = t.id
    returning j.id, t.run_number, t.attempt as returned_attempt, t.workflow_step_id
  ),
  ${leasedEventWrittenOut("target", sql`target`)},
  events as (
    insert into ${jobEventLog} (job_id, run_number, attempt, event_type, payload)
    select id, run_number, returned_attempt, 'REQUEUED', jsonb_build_object('reason', ${sql.placeholder("reason")}::text)
    from returned
  ),
  steps as (
    update ${workflowSteps} s set
      status = 'ENQUEUED',
      started_at = case when r.returned_attempt = 1 then null else s.started_at end
    from returned r
    where s.id = any(array(select workflow_step_id from returned where workflow_step_id is not null))
      and s.id = r.workflow_step_id and s.status = 'RUNNING'
  )
  select id from returned
`,
);

/**
 * Who holds a job now: after a return of one claim matched nothing, it tells a lease taken by
 * another worker (`job.lease_owner_mismatch`) from an attempt that is not an unstarted one.
 */
export const leaseHolder = statement<Pick<JobQueueRow, "status" | "worker_id">>(
  "runledger_job_lease_holder",
  sql`select status, worker_id from ${jobQueue} where id = ${sql.placeholder("id")}::uuid`,
);
