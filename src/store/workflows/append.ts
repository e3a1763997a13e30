import { sql } from "drizzle-orm";
import { uuidv7 } from "uuidv7";
import {
  canonicalAppendRequest,
  isTerminalWorkflowStepStatus,
  MAX_WORKFLOW_STEPS,
  type OrganizationScope,
  RunledgerError,
  validateWorkflowStepAppend,
  type WorkflowStepEnqueue,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { workflowRunMutations, workflowRuns, workflowSteps } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { checkIdentifierLength, fail, isBlank, isStorableText, isUuid, jsonText } from "../validate.ts";
import { checkStepOrganizations, checkStorable, insertSteps, lockDefinitions } from "./enqueue.ts";
import { runFromRow, stepFromRow, type WorkflowRunRecord, type WorkflowStepRecord } from "./records.ts";
import { cancelUnsatisfiedSteps, propagateTerminal, recomputeRunStatus, releaseSteps } from "./release.ts";
import { requireReadCommitted, requireVisibleRun } from "./release-lock.ts";

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
  const visible = scopeCondition(sql`organization_id`, input?.scope);
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
  try {
    return await executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.append_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      const existingRows = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowSteps} where workflow_run_id = ${runId} order by id for update`,
      );
      const [run] = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowRuns} where id = ${runId} and ${visible} for no key update`,
      );
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      const request = JSON.stringify(
        canonicalAppendRequest(input.appendWindowStepKey, input.steps, run.organization_id ?? null),
      );

      const [previous] = await queryRows<{ same: boolean }>(
        tx,
        sql`select request = ${request}::jsonb as same from ${workflowRunMutations}
          where workflow_run_id = ${runId} and mutation_key = ${input.mutationKey}`,
      );
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

      const byKey = new Map(existing.map((s) => [s.stepKey, s]));
      validateWorkflowStepAppend(new Set(byKey.keys()), input.steps);
      checkStepOrganizations(input.steps, run.organization_id ?? null);
      await lockDefinitions(tx, input.steps);

      const ids = await insertSteps(
        tx,
        runId,
        run.organization_id ?? null,
        input.steps,
        new Map(existing.map((s) => [s.stepKey, s.id])),
        (step) => {
          let pending = 0;
          let unsatisfied = 0;
          for (const dependency of step.dependencies) {
            const prior = byKey.get(dependency.prerequisiteStepKey);
            if (prior === undefined || !isTerminalWorkflowStepStatus(prior.status)) pending++;
            else if (dependency.releaseMode === "ON_SUCCESS" && prior.status !== "SUCCEEDED") unsatisfied++;
          }
          return { pending, unsatisfied };
        },
      );
      await tx.execute(
        sql`insert into ${workflowRunMutations} (id, workflow_run_id, mutation_key, metadata, request)
          values (${uuidv7()}, ${runId}, ${input.mutationKey}, ${metadata}::jsonb, ${request}::jsonb)`,
      );

      const fresh = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowSteps} where id = any(${sql.param([...ids.values()])}::uuid[]) order by created_at, id`,
      );
      const ready = fresh.filter((s) => s.dependency_count_pending === 0 && s.dependency_count_unsatisfied === 0);
      await releaseSteps(
        tx,
        runId,
        ready.map((s) => s.id),
      );
      const canceled = await cancelUnsatisfiedSteps(
        tx,
        fresh.filter((s) => s.dependency_count_pending === 0 && s.dependency_count_unsatisfied > 0).map((s) => s.id),
      );
      await propagateTerminal(
        tx,
        runId,
        canceled.map((stepId) => ({ stepId, status: "CANCELED" as const })),
      );
      await recomputeRunStatus(tx, runId);
      const [after] = await queryRows<RawRow>(tx, sql`select * from ${workflowRuns} where id = ${runId}`);
      const appended = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowSteps} where id = any(${sql.param([...ids.values()])}::uuid[]) order by created_at, id`,
      );
      return {
        workflowRun: runFromRow(after!),
        appendedSteps: appended.map(stepFromRow),
        outcome: "APPENDED" as const,
      };
    });
  } catch (error) {
    throw toQueryError(error);
  }
}
