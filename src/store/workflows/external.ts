import { checkLabel, type OrganizationScope, RunledgerError, truncateErrorMessage } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { scopeCondition } from "../sql/scope.ts";
import { announceRun, finishExternalStep, lockVisibleRunSteps } from "../sql/workflows/mutations.ts";
import { runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowStepRow } from "../sql/workflows/rows.ts";
import { checkTextSize, fail, isBlank, isStorableText, isUuid } from "../validate.ts";
import { propagateSteps, recomputeRunStatus } from "./propagate.ts";
import { stepFromRow, type WorkflowStepRecord } from "./records.ts";
import { lockRun, requireReadCommitted, tryShareStepReleaseLock } from "./run-locks.ts";

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
  const visible = scopeCondition(runOrganization, input?.scope);
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
  return translating(() =>
    executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.external_completion_unsupported_isolation");
      const steps = await queryRows<WorkflowStepRow>(tx, lockVisibleRunSteps(input.workflowRunId, visible));
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
      await tryShareStepReleaseLock(tx, step.workflowRunId);
      await lockRun(tx, step.workflowRunId);
      const [updated] = await finishExternalStep.run(tx, {
        id: step.id,
        status: input.terminalStatus,
        reason: input.statusReason ?? input.terminalStatus,
        errorCode: input.lastErrorCode ?? null,
        errorMessage: lastErrorMessage,
      });
      await propagateSteps(tx, { finished: [step.id] });
      await recomputeRunStatus(tx, step.workflowRunId);
      await announceRun.run(tx, { id: step.workflowRunId });
      return stepFromRow(updated!);
    }),
  );
}
