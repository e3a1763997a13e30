import { sql } from "drizzle-orm";
import { isTerminalWorkflowStepStatus, type WorkflowStepStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { queryRows } from "../query.ts";
import { workflowSteps } from "../schema/index.ts";
import { internalState, lockRun, propagateTerminal, recomputeRunStatus } from "./release.ts";
import { requireReadCommitted, shareReleaseLock } from "./release-lock.ts";

/** A job-backed step reaching a terminal status, decided inside the job's own transaction. */
export interface StepSettlement {
  jobId: string;
  stepId: string;
  status: Extract<WorkflowStepStatus, "SUCCEEDED" | "FAILED" | "CANCELED">;
  reason?: string | null;
  errorCode?: string | null;
  errorMessage?: string | null;
}

/**
 * Settle the step a terminal job backs, in the job's transaction (the job row is already locked):
 * lock the step, check the step↔job link, take the run's shared release lock (waiting up to 5 s
 * for an in-flight cancellation), mark the step, release or cancel its dependents and re-derive
 * the run's status. A step that is already terminal is left alone.
 */
export async function settleWorkflowStep(tx: Executor, settlement: StepSettlement): Promise<void> {
  await requireReadCommitted(tx, "workflow.terminal_completion_unsupported_isolation");
  const [step] = await queryRows<{ workflow_run_id: string; status: WorkflowStepStatus; job_id: string | null }>(
    tx,
    sql`select workflow_run_id, status, job_id from ${workflowSteps} where id = ${settlement.stepId} for update`,
  );
  if (step === undefined || step.job_id !== settlement.jobId) {
    throw internalState("step/job linkage mismatch", { workflowStepId: settlement.stepId, jobId: settlement.jobId });
  }
  if (isTerminalWorkflowStepStatus(step.status)) return;
  const runId = step.workflow_run_id;
  await shareReleaseLock(tx, runId);
  await lockRun(tx, runId);
  const reason = settlement.status === "SUCCEEDED" ? "SUCCEEDED" : (settlement.reason ?? settlement.status);
  await tx.execute(sql`
    update ${workflowSteps} set
      status = ${settlement.status}::runledger.workflow_step_status,
      finished_at = now(),
      status_reason = ${reason},
      last_error_code = ${settlement.status === "SUCCEEDED" ? null : (settlement.errorCode ?? null)},
      last_error_message = ${settlement.status === "SUCCEEDED" ? null : (settlement.errorMessage ?? null)}
    where id = ${settlement.stepId}`);
  await propagateTerminal(tx, runId, [{ stepId: settlement.stepId, status: settlement.status }]);
  await recomputeRunStatus(tx, runId);
}
