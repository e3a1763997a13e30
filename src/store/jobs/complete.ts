import {
  checkLabel,
  JOB_FAILURE_KINDS,
  type JobFailureKind,
  RunledgerError,
  truncateErrorMessage,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError, translating } from "../errors.ts";
import { toDate } from "../rows.ts";
import { type FailureRow, failStatement, succeed } from "../sql/jobs/complete.ts";
import { fenceValues } from "../sql/jobs/fence.ts";
import { fail, isDelayMs, jsonText } from "../validate.ts";
import { settleWorkflowStep, settleWorkflowSteps } from "../workflows/settle.ts";
import { checkLease, type LeaseIdentity, leaseLost } from "./lease-identity.ts";

/*
 * Completions: validation, the plain-job statement first and, for workflow steps (or lost
 * leases), a transaction that also settles the steps. The statements are in sql/jobs/complete.ts.
 */

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
  await translating(async () => {
    // Plain jobs: one statement, no transaction of its own.
    const [plain] = await succeed.run(executor, successValues([item], true));
    if (plain !== undefined) return;
    await succeedInTransaction(executor, item);
  });
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
  const interpret = (row: FailureRow): FailureOutcome => {
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
  return translating(() => recordFailure(executor, failure, true));
}
