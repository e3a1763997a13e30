import { sql } from "drizzle-orm";
import {
  checkLabel,
  JOB_FAILURE_KINDS,
  type JobFailureKind,
  RunledgerError,
  truncateErrorMessage,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { statement } from "../query.ts";
import { toDate } from "../rows.ts";
import { jobDeadLetters, jobEventLog, jobQueue, workflowSteps } from "../schema/index.ts";
import { attemptWrittenOut, noHeldAttempt } from "../sql/jobs.ts";
import { fail, isDelayMs, jsonText } from "../validate.ts";
import { settleWorkflowStep, settleWorkflowSteps } from "../workflows/settle.ts";
import { checkLease, fenced, fenceValues, leaseLost, liveLease } from "./fence.ts";
import type { LeaseIdentity } from "./record.ts";

/*
 * Completions are the other half of the hot path. Many successes from one worker are written by
 * one statement, so a worker flushing every few milliseconds pays one round trip per batch rather
 * than per job, and that statement writes only the job rows: the successful attempt and its
 * SUCCEEDED event are the row itself (see "The ledger" in schema/jobs.ts; the event's id is drawn
 * here). Jobs that back a workflow step are excluded from it: a batch of them completes in one
 * transaction that also settles the steps and releases their dependents (see settle.ts); a single
 * completion is the same transaction with one item.
 *
 * Planner-proof: the ids drive primary-key lookups and the fence is checked per row against a
 * jsonb map (id → "run:attempt:worker"). A join with the input let the planner, with statistics
 * taken while few jobs were leased, scan every leased row per input row: one 1,000-item batch took
 * 33 s and leases ran out under the handlers that had finished.
 */
export const succeed = statement<{ id: string; workflow_step_id: string | null }>(
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

/** A successful finish, with optional final progress (falls back to what was stored). */
export interface JobSuccess {
  lease: LeaseIdentity;
  progressDone?: number;
  progressTotal?: number;
  checkpoint?: unknown;
  /** Only `completed` is accepted; a success always ends in that stage. */
  stage?: string;
}

/** A validated success: its lease and, when the handler returned any, its final progress. */
interface SuccessItem {
  lease: LeaseIdentity;
  extras: { progress_done?: number; progress_total?: number; checkpoint?: unknown } | undefined;
}

function successItem(success: JobSuccess): SuccessItem {
  checkLease(success?.lease);
  if (success.stage !== undefined && success.stage !== "completed") fail("job.invalid_success_stage");
  for (const field of ["progressDone", "progressTotal"] as const) {
    const value = success[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) fail("job.invalid_progress", { field });
  }
  if (success.progressDone === undefined && success.progressTotal === undefined && success.checkpoint === undefined) {
    return { lease: success.lease, extras: undefined };
  }
  const extras: SuccessItem["extras"] = {};
  if (success.progressDone !== undefined) extras.progress_done = success.progressDone;
  if (success.progressTotal !== undefined) extras.progress_total = success.progressTotal;
  if (success.checkpoint !== undefined) {
    extras.checkpoint = JSON.parse(jsonText(success.checkpoint, "job.invalid_progress", "checkpoint"));
  }
  return { lease: success.lease, extras };
}

/** The statement's parameters for a batch of items. */
function successValues(items: readonly SuccessItem[], plainOnly: boolean) {
  const extras: Record<string, unknown> = {};
  let withExtras = false;
  for (const { lease, extras: more } of items) {
    if (more === undefined) continue;
    extras[lease.jobId.toLowerCase()] = more;
    withExtras = true;
  }
  return {
    ...fenceValues(items.map((item) => item.lease)),
    extras: withExtras ? JSON.stringify(extras) : null,
    plainOnly,
  };
}

/**
 * Mark a leased job SUCCEEDED (stage `completed`), close its attempt and write its event; for a
 * workflow step, settle the step and release its dependents in the same transaction. Throws
 * `job.lease_owner_mismatch` when the lease is no longer held (nothing changes).
 */
export async function completeJobSuccess(executor: Executor, success: JobSuccess): Promise<void> {
  const item = successItem(success);
  try {
    // Plain jobs: one statement, no transaction of its own.
    const [plain] = await succeed.run(executor, successValues([item], true));
    if (plain !== undefined) return;
    await succeedInTransaction(executor, item);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** The path for workflow steps (and lost leases): job, step and dependents in one transaction. */
async function succeedInTransaction(executor: Executor, item: SuccessItem) {
  await executor.transaction(async (tx) => {
    const [done] = await succeed.run(tx, successValues([item], false));
    if (done === undefined) throw leaseLost(item.lease);
    if (done.workflow_step_id !== null) {
      await settleWorkflowStep(tx, { jobId: done.id, stepId: done.workflow_step_id, status: "SUCCEEDED" });
    }
  });
}

/** Outcome of one item of a batch completion. */
export type CompletionResult = { ok: true } | { ok: false; error: RunledgerError };

/**
 * Complete many successes: plain jobs in one statement, the rest (workflow steps, lost leases) in
 * one transaction that settles the steps. Never throws for a single item's lost lease; each item
 * gets its own result, in input order.
 */
export async function completeJobsSuccess(
  executor: Executor,
  successes: readonly JobSuccess[],
): Promise<CompletionResult[]> {
  const results: CompletionResult[] = successes.map(() => ({ ok: true }));
  const items: SuccessItem[] = [];
  const indexes: number[] = [];
  successes.forEach((success, index) => {
    try {
      items.push(successItem(success));
      indexes.push(index);
    } catch (error) {
      results[index] = { ok: false, error: toQueryError(error) };
    }
  });
  if (items.length === 0) return results;
  let done: Set<string>;
  try {
    done = new Set((await succeed.run(executor, successValues(items, true))).map((r) => r.id));
  } catch (error) {
    const failure = toQueryError(error);
    for (const index of indexes) results[index] = { ok: false, error: failure };
    return results;
  }
  if (done.size === items.length) return results;
  const rest = [...indexes.entries()].filter(([position]) => !done.has(items[position]!.lease.jobId));
  // The rest back workflow steps (or lost their leases): all in one transaction, which settles
  // the steps run by run. If anything in it fails, each gets a transaction of its own instead,
  // so one bad item cannot fail the others.
  try {
    const settled = await executor.transaction(async (tx) => {
      const completed = await succeed.run(
        tx,
        successValues(
          rest.map(([position]) => items[position]!),
          false,
        ),
      );
      await settleWorkflowSteps(
        tx,
        completed.flatMap((row) =>
          row.workflow_step_id === null ? [] : [{ jobId: row.id, stepId: row.workflow_step_id, status: "SUCCEEDED" }],
        ),
      );
      return new Set(completed.map((row) => row.id));
    });
    for (const [, index] of rest) {
      const success = successes[index]!;
      if (!settled.has(success.lease.jobId)) results[index] = { ok: false, error: leaseLost(success.lease) };
    }
  } catch {
    for (const [position, index] of rest) {
      try {
        await succeedInTransaction(executor, items[position]!);
      } catch (error) {
        results[index] = { ok: false, error: toQueryError(error) };
      }
    }
  }
  return results;
}

/*
 * One statement decides retry or dead letter from the locked row (TERMINAL and PANICKED never
 * retry; otherwise the attempt budget decides), updates the job, writes the attempt out of the
 * job row with its outcome (and its LEASED event), writes FAILED plus RETRY_SCHEDULED or
 * DEAD_LETTERED, upserts the dead letter and moves a retried workflow step back to ENQUEUED. A
 * retry without a positive delay changes nothing. A dead-lettered job's stage becomes `failed`.
 */
export const failStatement = statement<{
  path: string;
  id: string;
  workflow_step_id: string | null;
  next_run_at: string | null;
}>(
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

/** A failed attempt as the worker reports it, with the lease it is fenced by. */
export interface JobFailureReport {
  lease: LeaseIdentity;
  kind: JobFailureKind;
  code: string;
  message: string;
  /** Required (> 0) when the failure leads to a retry. */
  retryDelayMs?: number;
}

/** What a failure did to the job. */
export type FailureOutcome = { outcome: "RETRY_SCHEDULED"; nextRunAt: Date } | { outcome: "DEAD_LETTERED" };

function checkFailure(failure: JobFailureReport): void {
  if (!(JOB_FAILURE_KINDS as readonly string[]).includes(failure.kind))
    fail("job.invalid_failure_report", { field: "kind" });
  checkLabel(failure.code, "code", "job.invalid_failure_report");
  if (typeof failure.message !== "string") fail("job.invalid_failure_report", { field: "message" });
  if (failure.retryDelayMs !== undefined && !isDelayMs(failure.retryDelayMs)) fail("job.invalid_retry_delay");
}

/**
 * Text PostgreSQL can store, within `MAX_ERROR_MESSAGE_BYTES`: NUL and lone surrogates replaced and
 * a longer message cut with a marker, so an odd or huge error message cannot fail the write or be
 * copied whole into the job, its attempt, its events, its dead letter and its step.
 */
function storable(text: string): string {
  return truncateErrorMessage(text.replaceAll("\u0000", "\uFFFD").toWellFormed());
}

/** Internal: shared by workers (live lease required) and the reaper (expired lease expected). */
export async function recordFailure(
  executor: Executor,
  failure: JobFailureReport,
  requireLive: boolean,
): Promise<FailureOutcome> {
  const { lease } = failure;
  const values = (plainOnly: boolean) => ({
    ...fenceValues([lease]),
    kind: failure.kind,
    code: storable(failure.code),
    message: storable(failure.message),
    delayMs: failure.retryDelayMs ?? null,
    requireLive,
    plainOnly,
  });
  const interpret = (row: { path: string; next_run_at: string | null }): FailureOutcome => {
    if (row.path === "invalid_delay") throw new RunledgerError("job.invalid_retry_delay");
    return row.path === "dead"
      ? { outcome: "DEAD_LETTERED" }
      : { outcome: "RETRY_SCHEDULED", nextRunAt: toDate(row.next_run_at) };
  };
  const [plain] = await failStatement.run(executor, values(true));
  if (plain !== undefined) return interpret(plain);
  return executor.transaction(async (tx) => {
    const [row] = await failStatement.run(tx, values(false));
    if (row === undefined) throw leaseLost(lease);
    const outcome = interpret(row);
    if (outcome.outcome === "DEAD_LETTERED" && row.workflow_step_id !== null) {
      await settleWorkflowStep(tx, {
        jobId: row.id,
        stepId: row.workflow_step_id,
        status: "FAILED",
        reason: failure.kind,
        errorCode: storable(failure.code),
        errorMessage: storable(failure.message),
      });
    }
    return outcome;
  });
}

/**
 * Record a failed attempt: retry after `retryDelayMs` (required, > 0) when the kind is retryable
 * and attempts remain, otherwise dead-letter the job (snapshotting payload and checkpoint) and, for
 * a workflow step, fail the step and settle its dependents. `job.lease_owner_mismatch` when the
 * lease is no longer held; `job.invalid_retry_delay` when a retry has no positive delay. Either
 * way nothing changes.
 */
export async function completeJobFailure(executor: Executor, failure: JobFailureReport): Promise<FailureOutcome> {
  checkLease(failure?.lease);
  checkFailure(failure);
  try {
    return await recordFailure(executor, failure, true);
  } catch (error) {
    throw toQueryError(error);
  }
}
