import {
  canonicalAppendRequest,
  MAX_WORKFLOW_STEPS,
  newId,
  type OrganizationScope,
  RunledgerError,
  validateWorkflowStepAppend,
  type WorkflowStepEnqueue,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { scopeCondition } from "../sql/scope.ts";
import { lockRunSteps, lockVisibleRun } from "../sql/workflows/locks.ts";
import { appendRecorded, insertMutation, readSteps } from "../sql/workflows/mutations.ts";
import { recountDependencies } from "../sql/workflows/propagate.ts";
import { readRun, runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow } from "../sql/workflows/rows.ts";
import { checkIdentifierLength, fail, isBlank, isStorableText, isUuid, jsonText } from "../validate.ts";
import { checkStepOrganizations, checkStorable, insertSteps, lockDefinitions } from "./enqueue.ts";
import { propagateSteps, recomputeRunStatus } from "./propagate.ts";
import { runFromRow, stepFromRow, type WorkflowRunRecord, type WorkflowStepRecord } from "./records.ts";
import { requireReadCommitted, requireVisibleRun, tryShareStepReleaseLock } from "./run-locks.ts";

export interface AppendWorkflowStepsInput {
  workflowRunId: string;
  /** Append to a run of this organization, or of any (`ALL_ORGANIZATIONS`). Required. */
  scope: OrganizationScope;
  /** Idempotency key of this append within the run. */
  mutationKey: string;
  mutationMetadata?: unknown;
  /** An external step that must be WAITING_FOR_EXTERNAL: the window appends may happen in. */
  appendWindowStepKey: string;
  steps: readonly WorkflowStepEnqueue[];
}

export interface AppendWorkflowStepsResult {
  workflowRun: WorkflowRunRecord;
  appendedSteps: WorkflowStepRecord[];
  outcome: "APPENDED" | "ALREADY_APPLIED";
}

/**
 * Add steps (and edges to existing or new steps) to a live run while its append window — an
 * open external gate — is waiting. Recorded in `workflow_run_mutations` under `mutationKey`: an
 * identical retry returns the appended steps as they are now (`ALREADY_APPLIED`), a different one
 * fails with `workflow.append_conflicting_retry`. New steps whose prerequisites are all finished
 * are released (or canceled as unsatisfied) at once.
 */
export async function appendWorkflowSteps(
  executor: Executor,
  input: AppendWorkflowStepsInput,
): Promise<AppendWorkflowStepsResult> {
  const visible = scopeCondition(runOrganization, input?.scope);
  if (isBlank(input.mutationKey) || !isStorableText(input.mutationKey)) fail("workflow.append_mutation_key_blank");
  checkIdentifierLength(input.mutationKey, "mutationKey");
  if (!isUuid(input.workflowRunId)) fail("workflow.run_not_found");
  if (isBlank(input.appendWindowStepKey) || !isStorableText(input.appendWindowStepKey)) {
    fail("workflow.append_window_missing");
  }
  checkIdentifierLength(input.appendWindowStepKey, "appendWindowStepKey");
  if (!Array.isArray(input.steps)) fail("workflow.invalid_dag_empty");
  if (input.steps.length > MAX_WORKFLOW_STEPS)
    fail("workflow.invalid_dag_too_many_steps", { maxSteps: MAX_WORKFLOW_STEPS });
  // Payloads and stored text first, before any statement; the step shapes need the run's steps.
  checkStorable(input.steps, null, input.mutationMetadata);
  const metadata = jsonText(input.mutationMetadata ?? {}, "job.invalid_payload", "mutationMetadata");
  const runId = input.workflowRunId;
  return translating(() =>
    executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.append_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      const existingRows = await lockRunSteps.run(tx, { runId });
      const [run] = await queryRows<WorkflowRunRow>(tx, lockVisibleRun(runId, visible, "no key update"));
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      const request = JSON.stringify(
        canonicalAppendRequest(input.appendWindowStepKey, input.steps, run.organization_id ?? null),
      );

      const [previous] = await appendRecorded.run(tx, { runId, mutationKey: input.mutationKey, request });
      if (previous !== undefined) {
        if (!previous.same) throw new RunledgerError("workflow.append_conflicting_retry");
        const keys = new Set(input.steps.map((s) => s.stepKey));
        return {
          workflowRun: runFromRow(run),
          appendedSteps: existingRows.filter((s) => keys.has(s.step_key)).map(stepFromRow),
          outcome: "ALREADY_APPLIED" as const,
        };
      }

      const existing = existingRows.map(stepFromRow);
      const window = existing.find((s) => s.stepKey === input.appendWindowStepKey);
      if (window === undefined) throw new RunledgerError("workflow.append_window_missing");
      if (window.executionKind !== "EXTERNAL") throw new RunledgerError("workflow.append_window_not_external");
      if (window.status !== "WAITING_FOR_EXTERNAL") throw new RunledgerError("workflow.append_window_not_open");
      if (!["RUNNING", "WAITING_FOR_EXTERNAL"].includes(run.status))
        throw new RunledgerError("workflow.append_terminal_run");

      const existingIds = new Map(existing.map((s) => [s.stepKey, s.id]));
      validateWorkflowStepAppend(new Set(existingIds.keys()), input.steps);
      checkStepOrganizations(input.steps, run.organization_id ?? null);
      await lockDefinitions(tx, input.steps);

      const ids = [...(await insertSteps(tx, runId, run.organization_id ?? null, input.steps, existingIds)).values()];
      await insertMutation.run(tx, {
        id: newId(),
        runId,
        mutationKey: input.mutationKey,
        metadata,
        request,
      });
      // The new steps' prerequisites may have finished long ago: their counters come from the
      // prerequisites' statuses, then they are decided like any other step.
      await tx.execute(recountDependencies(runId, ids));
      const decided = await propagateSteps(tx, { decide: ids });
      // Releasing takes the run's step-release lock (shared, without waiting): a cancellation
      // holding it is rewriting the run, and this append fails with `workflow.release_conflict`.
      if (decided.some((step) => step.released)) await tryShareStepReleaseLock(tx, runId);
      await recomputeRunStatus(tx, runId);
      const [after] = await readRun.run(tx, { id: runId });
      const appended = await readSteps.run(tx, { ids });
      return {
        workflowRun: runFromRow(after!),
        appendedSteps: appended.map(stepFromRow),
        outcome: "APPENDED" as const,
      };
    }),
  );
}
