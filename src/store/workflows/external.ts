import { sql } from "drizzle-orm";
import {
  checkLabel,
  type OrganizationScope,
  RunledgerError,
  truncateErrorMessage,
  type WorkflowStepStatus,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { WORKFLOWS_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { workflowRuns, workflowSteps } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { checkTextSize, fail, isBlank, isStorableText, isUuid } from "../validate.ts";
import { stepFromRow, type WorkflowStepRecord } from "./records.ts";
import { lockRun, propagateTerminal, recomputeRunStatus } from "./release.ts";
import { requireReadCommitted, tryShareReleaseLock } from "./release-lock.ts";

export interface CompleteExternalWorkflowStepInput {
  workflowRunId: string;
  /** Complete a gate of a run of this organization, or of any (`ALL_ORGANIZATIONS`). Required. */
  scope: OrganizationScope;
  stepKey: string;
  terminalStatus: "SUCCEEDED" | "FAILED" | "CANCELED";
  /** Who or what decided, for the audit trail. */
  statusReason?: string;
  lastErrorCode?: string;
  lastErrorMessage?: string;
}

const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELED"];

/**
 * Close an external gate (`WAITING_FOR_EXTERNAL`) as SUCCEEDED, FAILED or CANCELED, then release
 * or cancel its dependents and re-derive the run's status. Completing it again with the same
 * status returns the step unchanged; another status fails with
 * `workflow.external_step_conflicting_completion_retry`.
 */
export async function completeExternalWorkflowStep(
  executor: Executor,
  input: CompleteExternalWorkflowStepInput,
): Promise<WorkflowStepRecord> {
  const visible = scopeCondition(sql`r.organization_id`, input?.scope);
  if (!TERMINAL.includes(input.terminalStatus)) fail("workflow.external_step_invalid_terminal_status");
  if (!isUuid(input.workflowRunId)) fail("workflow.external_step_not_found");
  if (isBlank(input.stepKey)) fail("workflow.invalid_dag_step_key_blank");
  for (const field of ["statusReason", "lastErrorCode", "lastErrorMessage"] as const) {
    const value = input[field];
    if (value !== undefined && (typeof value !== "string" || !isStorableText(value))) {
      fail("workflow.external_step_invalid_terminal_status", { field });
    }
  }
  checkTextSize(input.statusReason, "statusReason");
  if (input.lastErrorCode !== undefined)
    checkLabel(input.lastErrorCode, "lastErrorCode", "workflow.external_step_invalid_terminal_status");
  const lastErrorMessage = input.lastErrorMessage === undefined ? null : truncateErrorMessage(input.lastErrorMessage);
  try {
    return await executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.external_completion_unsupported_isolation");
      const steps = await queryRows<RawRow>(
        tx,
        sql`select s.* from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
          where s.workflow_run_id = ${input.workflowRunId} and ${visible}
          order by s.id for update of s`,
      );
      const row = steps.find((s) => s.step_key === input.stepKey);
      if (row === undefined) throw new RunledgerError("workflow.external_step_not_found");
      const step = stepFromRow(row);
      if (step.executionKind !== "EXTERNAL") throw new RunledgerError("workflow.external_step_not_external");
      if (TERMINAL.includes(step.status)) {
        if (step.status === input.terminalStatus) return step;
        throw new RunledgerError("workflow.external_step_conflicting_completion_retry", {
          details: { stepKey: step.stepKey, status: step.status },
        });
      }
      if (step.status !== "WAITING_FOR_EXTERNAL") throw new RunledgerError("workflow.external_step_not_waiting");
      await tryShareReleaseLock(tx, step.workflowRunId);
      await lockRun(tx, step.workflowRunId);
      const [updated] = await queryRows<RawRow>(
        tx,
        sql`update ${workflowSteps} set status = ${input.terminalStatus}::runledger.workflow_step_status,
            finished_at = now(), status_reason = ${input.statusReason ?? input.terminalStatus},
            last_error_code = ${input.lastErrorCode ?? null}, last_error_message = ${lastErrorMessage}
          where id = ${step.id} returning *`,
      );
      await propagateTerminal(tx, step.workflowRunId, [
        { stepId: step.id, status: input.terminalStatus as WorkflowStepStatus },
      ]);
      await recomputeRunStatus(tx, step.workflowRunId);
      await tx.execute(sql`select pg_notify(${WORKFLOWS_CHANNEL}, ${step.workflowRunId})`);
      return stepFromRow(updated!);
    });
  } catch (error) {
    throw toQueryError(error);
  }
}
