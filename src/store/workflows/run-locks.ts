import type { SQL } from "drizzle-orm";
import { RunledgerError, type WorkflowRunStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { queryRows } from "../query.ts";
import {
  lockRunJobs,
  lockRunRow,
  lockRunSteps,
  readsCommitted,
  stepReleaseLock,
  stepReleaseLockKey,
  visibleRunId,
} from "../sql/workflows/locks.ts";
import type { WorkflowRunRow, WorkflowStepRow } from "../sql/workflows/rows.ts";

/*
 * How workflow operations lock a run (spec §6.8): its rows, and its step-release lock, an advisory
 * lock that cancellation and retry hold exclusively so that no step of the run is released while
 * they rewrite it (see sql/workflows/locks.ts).
 */

/** The step-release lock shared, without waiting; `workflow.release_conflict` while a cancellation holds it. */
export async function tryShareStepReleaseLock(tx: Executor, runId: string): Promise<void> {
  const [row] = await stepReleaseLock.tryShare.run(tx, { key: stepReleaseLockKey(runId) });
  if (!row?.ok) throw new RunledgerError("workflow.release_conflict", { details: { workflowRunId: runId } });
}

/**
 * The step-release lock shared, waiting up to 5 s for an in-flight cancellation (a stricter caller
 * `lock_timeout` is kept); `workflow.release_conflict` if the wait times out.
 */
export async function shareStepReleaseLock(tx: Executor, runId: string): Promise<void> {
  const [row] = await stepReleaseLock.boundTimeout.run(tx, {});
  try {
    await tx.execute(stepReleaseLock.savepoint);
    await stepReleaseLock.share.run(tx, { key: stepReleaseLockKey(runId) });
    await tx.execute(stepReleaseLock.releaseSavepoint);
  } catch (error) {
    const code =
      (error as { cause?: { code?: string }; code?: string }).cause?.code ?? (error as { code?: string }).code;
    if (code !== "55P03") throw error;
    await tx.execute(stepReleaseLock.rollbackToSavepoint);
    throw new RunledgerError("workflow.release_conflict", { details: { workflowRunId: runId }, cause: error });
  } finally {
    await stepReleaseLock.restoreTimeout.run(tx, { previous: row?.previous ?? "0" });
  }
}

/** The step-release lock exclusively (cancellation, retry); waits for in-flight completions and releases. */
export async function exclusiveStepReleaseLock(tx: Executor, runId: string): Promise<void> {
  await stepReleaseLock.exclusive.run(tx, { key: stepReleaseLockKey(runId) });
}

/** Lock a run row for the rest of the transaction; returns its status, or undefined when absent. */
export async function lockRun(tx: Executor, runId: string): Promise<WorkflowRunStatus | undefined> {
  const [row] = await lockRunRow.run(tx, { runId });
  return row?.status;
}

/**
 * The locks of an operation that rewrites a whole run (cancellation, retry), in the engine's order
 * (spec §6.8): the job rows of its steps in job id order, so it queues behind an in-flight
 * completion instead of deadlocking with it; the run's exclusive step-release lock; the job rows
 * again (jobs released while it waited); the step rows in id order. Returns the steps; the caller
 * locks the run row next.
 */
export async function lockRunForRewrite(tx: Executor, runId: string): Promise<WorkflowStepRow[]> {
  await lockRunJobs.run(tx, { runId });
  await exclusiveStepReleaseLock(tx, runId);
  await lockRunJobs.run(tx, { runId });
  return lockRunSteps.run(tx, { runId });
}

/** Release-sensitive operations rely on re-reading rows committed while they waited. */
export async function requireReadCommitted(
  tx: Executor,
  code:
    | "workflow.terminal_completion_unsupported_isolation"
    | "workflow.external_completion_unsupported_isolation"
    | "workflow.cancel_unsupported_isolation"
    | "workflow.append_unsupported_isolation"
    | "workflow.retry_unsupported_isolation"
    | "workflow.enqueue_idempotency_unsupported_isolation",
): Promise<void> {
  const [row] = await readsCommitted.run(tx, {});
  if (!row?.ok) throw new RunledgerError(code);
}

/**
 * `workflow.run_not_found` unless the run is `visible` (a condition on its row, e.g. its
 * organization), read without a lock.
 * Scoped rewrites check this before they lock anything: otherwise another organization that
 * knows a run id could queue behind its completions and stall them. A run's organization never
 * changes, so the unlocked read stays true; the locked read that follows checks it again.
 */
export async function requireVisibleRun(tx: Executor, runId: string, visible: SQL): Promise<void> {
  const [row] = await queryRows<Pick<WorkflowRunRow, "id">>(tx, visibleRunId(runId, visible));
  if (row === undefined) throw new RunledgerError("workflow.run_not_found");
}
