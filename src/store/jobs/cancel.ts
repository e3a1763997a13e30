import { type SQL, sql } from "drizzle-orm";
import { type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { CANCEL_CHANNEL, JOBS_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import { jobEventLog, jobQueue } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { checkTextSize, fail, isBlank, isStorableText, isUuid } from "../validate.ts";
import { settleWorkflowStep } from "../workflows/settle.ts";
import { attemptWrittenOut, noHeldAttempt, succeededEventWrittenOut } from "./ledger.ts";
import { type JobRecord, jobFromRow, type RawRow } from "./record.ts";

export interface JobMutationInput {
  jobId: string;
  /** Act on a job of this organization, or of any (`ALL_ORGANIZATIONS`). Required. */
  scope: OrganizationScope;
  reason?: string;
}

/** The checked input's scope condition on `organization_id` (`scope.required` first, before anything else). */
function checkInput(input: JobMutationInput): SQL {
  const visible = scopeCondition(sql`organization_id`, input?.scope);
  if (!isUuid(input.jobId)) fail("job.not_found");
  if (input.reason !== undefined && (isBlank(input.reason) || !isStorableText(input.reason))) {
    fail("job.invalid_state_transition", { field: "reason" });
  }
  checkTextSize(input.reason, "reason");
  return visible;
}

/** Lock a job in scope (`visible`) or explain why there is none. */
async function lockJob(tx: Executor, input: JobMutationInput, visible: SQL): Promise<RawRow> {
  const [row] = await queryRows<RawRow>(
    tx,
    sql`select * from ${jobQueue} where id = ${input.jobId} and ${visible} for update`,
  );
  if (row === undefined) throw new RunledgerError("job.not_found", { details: { jobId: input.jobId } });
  return row;
}

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

/**
 * Cancel a PENDING or LEASED job (the running worker is fenced out at once and told on the
 * `runledger_cancel` channel); a workflow step's job also cancels the step and settles its
 * dependents. `job.not_found` when no visible job; `job.invalid_state_transition` otherwise.
 */
export async function cancelJob(executor: Executor, input: JobMutationInput): Promise<JobRecord> {
  const visible = checkInput(input);
  try {
    return await executor.transaction(async (tx) => {
      const current = await lockJob(tx, input, visible);
      if (current.status !== "PENDING" && current.status !== "LEASED") {
        throw new RunledgerError("job.invalid_state_transition", {
          details: { jobId: input.jobId, status: current.status },
        });
      }
      const reason = input.reason ?? "CANCELED";
      const [row] = await cancelLockedJobs(tx, sql`id = ${input.jobId}`, reason);
      const job = jobFromRow(row!);
      if (job.workflowStepId !== null) {
        await settleWorkflowStep(tx, { jobId: job.id, stepId: job.workflowStepId, status: "CANCELED", reason });
      }
      return job;
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Run a finished job (SUCCEEDED, DEAD_LETTERED or CANCELED) again as a new run: run number + 1,
 * attempt 0, stage `queued`, progress and checkpoint cleared. Jobs that back a workflow step are
 * refused (`job.workflow_requeue_not_supported`): requeuing one would desynchronize its run.
 */
export async function requeueJob(executor: Executor, input: JobMutationInput): Promise<JobRecord> {
  const visible = checkInput(input);
  try {
    return await executor.transaction(async (tx) => {
      const current = await lockJob(tx, input, visible);
      if (current.workflow_step_id !== null) {
        throw new RunledgerError("job.workflow_requeue_not_supported", { details: { jobId: input.jobId } });
      }
      if (!["SUCCEEDED", "DEAD_LETTERED", "CANCELED"].includes(current.status)) {
        throw new RunledgerError("job.invalid_state_transition", {
          details: { jobId: input.jobId, status: current.status },
        });
      }
      const [row] = await requeueLockedJobs(tx, sql`id = ${input.jobId}`, { reason: input.reason ?? "REQUEUED" });
      return jobFromRow(row!);
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Which of `jobIds` are canceled now. A worker checks a `runledger_cancel` notification here
 * before it aborts a handler: any database user can send one, so the notification only says
 * where to look.
 */
export async function canceledJobIds(executor: Executor, jobIds: readonly string[]): Promise<Set<string>> {
  const ids = jobIds.filter(isUuid);
  if (ids.length === 0) return new Set();
  try {
    const rows = await queryRows<{ id: string }>(
      executor,
      sql`select id from ${jobQueue} where id = any(${`{${ids.join(",")}}`}::uuid[]) and status = 'CANCELED'`,
    );
    return new Set(rows.map((row) => row.id));
  } catch (error) {
    throw toQueryError(error);
  }
}
