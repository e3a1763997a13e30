import { type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { cancelLockedJobs } from "../sql/jobs/cancel.ts";
import { scopeCondition } from "../sql/scope.ts";
import { lockVisibleRun } from "../sql/workflows/locks.ts";
import { cancelLiveSteps, cancelRunRow, jobsOfLiveSteps, readRunAnnounced } from "../sql/workflows/mutations.ts";
import { runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow } from "../sql/workflows/rows.ts";
import { checkTextSize, fail, isStorableText, isUuid } from "../validate.ts";
import { internalState, propagateSteps } from "./propagate.ts";
import { runFromRow, type WorkflowRunRecord } from "./records.ts";
import { lockRunForRewrite, requireReadCommitted, requireVisibleRun } from "./run-locks.ts";

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
 * Locks follow the engine's order — job rows, the run's exclusive step-release lock, job rows
 * again, step rows, the run row — so it queues behind in-flight completions instead of
 * deadlocking with them.
 */
export async function cancelWorkflowRun(executor: Executor, input: CancelWorkflowRunInput): Promise<WorkflowRunRecord> {
  const visible = scopeCondition(runOrganization, input?.scope);
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
  return translating(() =>
    executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.cancel_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      await lockRunForRewrite(tx, runId);
      const [run] = await queryRows<WorkflowRunRow>(tx, lockVisibleRun(runId, visible, "update"));
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      if (run.status !== "RUNNING" && run.status !== "WAITING_FOR_EXTERNAL") return runFromRow(run);
      // Canceled first, so releases reached from here on are no-ops.
      await cancelRunRow.run(tx, { id: runId });

      // Jobs of enqueued/running steps: each job, its attempt and its event in one statement.
      await cancelLockedJobs(tx, jobsOfLiveSteps(runId), reason);

      // Every live step becomes CANCELED; propagation then counts them against their dependents (all
      // canceled with them, so nothing is released or canceled: the run is CANCELED).
      for (let pass = 0; ; pass++) {
        const live = await cancelLiveSteps.run(tx, {
          runId,
          reason,
          errorCode: input.lastErrorCode ?? null,
          errorMessage: input.lastErrorMessage ?? null,
        });
        if (live.length === 0) break;
        if (pass > 0) throw internalState("cancel made no progress", { workflowRunId: runId });
        await propagateSteps(tx, { finished: live.map((s) => s.id) });
      }
      const [final] = await readRunAnnounced.run(tx, { id: runId });
      return runFromRow(final!);
    }),
  );
}
