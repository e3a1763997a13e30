import { sql } from "drizzle-orm";
import { type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { RUN_TERMINAL_CHANNEL, WORKFLOWS_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { workflowRuns, workflowSteps } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { cancelLockedJobs } from "../sql/jobs/cancel.ts";
import { checkTextSize, fail, isStorableText, isUuid } from "../validate.ts";
import { runFromRow, type WorkflowRunRecord } from "./records.ts";
import { internalState, lockRunForRewrite, propagateTerminal } from "./release.ts";
import { requireReadCommitted, requireVisibleRun } from "./release-lock.ts";

export interface CancelWorkflowRunInput {
  workflowRunId: string;
  /** Cancel a run of this organization, or of any (`ALL_ORGANIZATIONS`). Required. */
  scope: OrganizationScope;
  reason?: string;
  lastErrorCode?: string;
  lastErrorMessage?: string;
}

/**
 * Cancel a run: every pending or running step and its job is canceled (running handlers see
 * their signal abort through the `runledger_cancel` notification), open gates close as
 * CANCELED, and the run becomes CANCELED. A run that already finished is returned unchanged.
 * Locks follow the engine's order — job rows, the run's exclusive release lock, job rows
 * again, step rows, the run row — so it queues behind in-flight completions instead of
 * deadlocking with them.
 */
export async function cancelWorkflowRun(executor: Executor, input: CancelWorkflowRunInput): Promise<WorkflowRunRecord> {
  const visible = scopeCondition(sql`organization_id`, input?.scope);
  if (!isUuid(input.workflowRunId)) fail("workflow.run_not_found");
  for (const field of ["reason", "lastErrorCode", "lastErrorMessage"] as const) {
    const value = input[field];
    if (value !== undefined && (typeof value !== "string" || !isStorableText(value) || value.trim() === "")) {
      fail("workflow.run_not_found", { field });
    }
    checkTextSize(value, field);
  }
  const runId = input.workflowRunId;
  const reason = input.reason ?? "CANCELED";
  try {
    return await executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.cancel_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      await lockRunForRewrite(tx, runId);
      const [run] = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowRuns} where id = ${runId} and ${visible} for update`,
      );
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      if (run.status !== "RUNNING" && run.status !== "WAITING_FOR_EXTERNAL") return runFromRow(run);
      // Canceled first, so releases reached from here on are no-ops.
      await tx.execute(
        sql`update ${workflowRuns} set status = 'CANCELED', finished_at = coalesce(finished_at, now()) where id = ${runId}
          returning pg_notify(${RUN_TERMINAL_CHANNEL}, id::text)`,
      );

      // Jobs of enqueued/running steps: each job, its attempt and its event in one statement.
      await cancelLockedJobs(
        tx,
        sql`id in (select s.job_id from ${workflowSteps} s
          where s.workflow_run_id = ${runId} and s.status in ('ENQUEUED', 'RUNNING') and s.job_id is not null)`,
        reason,
      );

      // Every live step becomes CANCELED; propagation then settles dependents (all already canceled
      // or about to be, so nothing is released: the run is CANCELED).
      for (let pass = 0; ; pass++) {
        const live = await queryRows<{ id: string }>(
          tx,
          sql`update ${workflowSteps} set status = 'CANCELED', finished_at = now(),
              status_reason = ${reason}, last_error_code = ${input.lastErrorCode ?? null},
              last_error_message = ${input.lastErrorMessage ?? null}
            where workflow_run_id = ${runId} and status in ('BLOCKED', 'ENQUEUED', 'RUNNING', 'WAITING_FOR_EXTERNAL')
            returning id`,
        );
        if (live.length === 0) break;
        if (pass > 0) throw internalState("cancel made no progress", { workflowRunId: runId });
        await propagateTerminal(
          tx,
          runId,
          live.map((s) => ({ stepId: s.id, status: "CANCELED" as const })),
        );
      }
      const [final] = await queryRows<RawRow>(
        tx,
        sql`select *, pg_notify(${WORKFLOWS_CHANNEL}, id::text) from ${workflowRuns} where id = ${runId}`,
      );
      return runFromRow(final!);
    });
  } catch (error) {
    throw toQueryError(error);
  }
}
