import { sql } from "drizzle-orm";
import { checkLabel, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { statement } from "../query.ts";
import { toDate } from "../rows.ts";
import { jobEventLog, jobQueue, workflowSteps } from "../schema/index.ts";
import { leasedEventWrittenOut, noHeldAttempt } from "../sql/jobs.ts";
import { checkTextSize, fail, isBlank, isDelayMs, isInt32, isStorableText, jsonText } from "../validate.ts";
import { checkLease, fenced, fenceValues, leaseLost, liveLease } from "./fence.ts";
import type { LeaseIdentity } from "./record.ts";

export const heartbeat = statement<{ job_id: string; lease_expires_at: string }>(
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

/** A heartbeat: the lease to extend and its new length from now. */
export interface JobHeartbeat {
  lease: LeaseIdentity;
  leaseSeconds: number;
}

/** Many leases extended by the same length. */
export interface JobsHeartbeat {
  leases: readonly LeaseIdentity[];
  leaseSeconds: number;
}

/**
 * Extend many leases in one statement. Returns the new deadline of each lease still held;
 * leases lost (expired, canceled, taken over) are simply absent from the result.
 */
export async function heartbeatJobs(executor: Executor, input: JobsHeartbeat): Promise<Map<string, Date>> {
  const { leases, leaseSeconds } = input;
  if (!isInt32(leaseSeconds) || leaseSeconds <= 0) fail("job.invalid_lease_duration");
  if (leases.length === 0) return new Map();
  try {
    const rows = await heartbeat.run(executor, {
      ...fenceValues(leases.map(checkLease)),
      leaseSeconds,
    });
    return new Map(rows.map((row) => [row.job_id, toDate(row.lease_expires_at)]));
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Extend one lease; throws `job.lease_owner_mismatch` when it is no longer held. */
export async function heartbeatJob(executor: Executor, input: JobHeartbeat): Promise<{ leaseExpiresAt: Date }> {
  const lease = checkLease(input?.lease);
  const held = await heartbeatJobs(executor, { leases: [lease], leaseSeconds: input.leaseSeconds });
  const leaseExpiresAt = held.get(lease.jobId);
  if (leaseExpiresAt === undefined) throw leaseLost(lease);
  return { leaseExpiresAt };
}

/** What a handler reports while it runs. Absent fields keep their stored value. */
export interface JobProgressUpdate {
  stage?: string;
  progressDone?: number;
  progressTotal?: number;
  /** Resume state; survives retries within a run. */
  checkpoint?: unknown;
}

/** A progress write: the lease it is fenced by, and what the handler reports. */
export interface JobProgress extends JobProgressUpdate {
  lease: LeaseIdentity;
}

const progress = statement<{ id: string }>(
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

function checkCount(value: unknown, field: string): number | null {
  if (value === undefined) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) fail("job.invalid_progress", { field });
  return value;
}

/**
 * Record stage, progress and checkpoint for a held lease (one statement). Stage `running`
 * also persists the attempt's execution-start marker. Writes STAGE_CHANGED and PROGRESS events.
 */
export async function updateJobProgress(executor: Executor, update: JobProgress): Promise<void> {
  const lease = checkLease(update?.lease);
  if (update.stage !== undefined) checkLabel(update.stage, "stage", "job.invalid_progress");
  const done = checkCount(update.progressDone, "progressDone");
  const total = checkCount(update.progressTotal, "progressTotal");
  if (done !== null && total !== null && done > total) fail("job.invalid_progress", { field: "progressDone" });
  const hasCheckpoint = "checkpoint" in update && update.checkpoint !== undefined;
  const checkpoint = hasCheckpoint ? jsonText(update.checkpoint, "job.invalid_progress", "checkpoint") : null;
  try {
    const rows = await progress.run(executor, {
      ...fenceValues([lease]),
      stage: update.stage ?? null,
      done,
      total,
      hasCheckpoint,
      checkpoint,
      hasProgress: done !== null || total !== null,
    });
    if (rows.length === 0) throw leaseLost(lease);
  } catch (error) {
    throw toQueryError(error);
  }
}

/*
 * Hand claims back without consuming their attempts: the attempt a row holds is dropped (its
 * LEASED event stays, written out to the log, as the audit trail of the claim), the job is
 * PENDING again at the attempt number it had, and REQUEUED records why. With `requirePrestart`
 * only attempts claimed as prestart whose execution start was never persisted qualify (spec
 * §5.7); the lease may have expired (the reaper uses this).
 */
const release = statement<{ id: string }>(
  "runledger_release_unstarted_claim",
  sql`
  with target as (
    select j.* from ${jobQueue} j
    where ${fenced} and j.status = 'LEASED'
      and (not ${sql.placeholder("requirePrestart")}::boolean
        or (j.claim_origin = 'WORKER_PRESTART' and j.execution_started_at is null))
    for update of j
  ),
  released as (
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
    returning j.id, t.run_number, t.attempt as released_attempt, t.workflow_step_id
  ),
  ${leasedEventWrittenOut("target", sql`target`)},
  events as (
    insert into ${jobEventLog} (job_id, run_number, attempt, event_type, payload)
    select id, run_number, released_attempt, 'REQUEUED', jsonb_build_object('reason', ${sql.placeholder("reason")}::text)
    from released
  ),
  steps as (
    update ${workflowSteps} s set
      status = 'ENQUEUED',
      started_at = case when r.released_attempt = 1 then null else s.started_at end
    from released r
    where s.id = any(array(select workflow_step_id from released where workflow_step_id is not null))
      and s.id = r.workflow_step_id and s.status = 'RUNNING'
  )
  select id from released
`,
);

const leaseHolder = statement<{ status: string; worker_id: string | null }>(
  "runledger_job_lease_holder",
  sql`select status, worker_id from ${jobQueue} where id = ${sql.placeholder("id")}::uuid`,
);

/** A prestart claim to hand back: its lease, why, and how long until the job is due again. */
export interface UnstartedClaimRelease {
  lease: LeaseIdentity;
  reason: string;
  retryDelayMs?: number;
}

/** Claims to hand back at once, all for the same reason. */
export interface UnstartedClaimsReturn {
  leases: readonly LeaseIdentity[];
  reason: string;
}

/**
 * Hand back a prestart claim whose `running` marker was never persisted, without consuming an
 * attempt: the attempt row is deleted and the job is PENDING again after `retryDelayMs`. Works on
 * expired leases too (the reaper uses it). `job.lease_owner_mismatch` when another worker holds
 * the job; `job.unstarted_claim_release_not_applicable` when the attempt already started.
 */
export async function releaseUnstartedJobClaim(executor: Executor, options: UnstartedClaimRelease): Promise<void> {
  const lease = checkLease(options?.lease);
  if (isBlank(options.reason) || !isStorableText(options.reason))
    fail("job.invalid_failure_report", { field: "reason" });
  checkTextSize(options.reason, "reason");
  const delay = Math.max(0, options.retryDelayMs ?? 0);
  if (!isDelayMs(delay)) fail("job.invalid_retry_delay");
  try {
    const rows = await release.run(executor, {
      ...fenceValues([lease]),
      delayMs: delay,
      reason: options.reason,
      requirePrestart: true,
    });
    if (rows.length > 0) return;
    const [holder] = await leaseHolder.run(executor, { id: lease.jobId });
    if (holder?.status === "LEASED" && holder.worker_id !== lease.workerId) throw leaseLost(lease);
    throw new RunledgerError("job.unstarted_claim_release_not_applicable", { details: { jobId: lease.jobId } });
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Hand back claims a worker took but never handed to a handler (its local queue at shutdown):
 * the jobs are PENDING again at once, the attempts are not counted and their rows are deleted,
 * and a REQUEUED event records `reason`. Leases no longer held are skipped. Returns the ids of
 * the jobs returned.
 */
export async function returnUnstartedClaims(executor: Executor, options: UnstartedClaimsReturn): Promise<string[]> {
  const { leases } = options;
  if (leases.length === 0) return [];
  if (isBlank(options.reason) || !isStorableText(options.reason))
    fail("job.invalid_failure_report", { field: "reason" });
  checkTextSize(options.reason, "reason");
  try {
    const rows = await release.run(executor, {
      ...fenceValues(leases.map(checkLease)),
      delayMs: 0,
      reason: options.reason,
      requirePrestart: false,
    });
    return rows.map((row) => row.id);
  } catch (error) {
    throw toQueryError(error);
  }
}
