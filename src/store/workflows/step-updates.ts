import { type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { scopeCondition } from "../sql/scope.ts";
import { lockVisibleRun } from "../sql/workflows/locks.ts";
import { lockVisibleStepKeys, replacePendingPayload } from "../sql/workflows/mutations.ts";
import { runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow, WorkflowStepRow } from "../sql/workflows/rows.ts";
import { fail, isUuid, jsonText } from "../validate.ts";

/**
 * Lock a run's steps and then the run (the order appends use) and return the step keys in
 * creation order, so the caller's transaction can decide what to change knowing nothing else
 * changes them until it ends. Call it inside that transaction. `workflow.run_not_found` when the
 * run does not exist or `scope` does not see it.
 */
export async function listWorkflowStepKeysForUpdate(
  executor: Executor,
  workflowRunId: string,
  options: { scope: OrganizationScope },
): Promise<string[]> {
  const visible = scopeCondition(runOrganization, options?.scope);
  if (!isUuid(workflowRunId)) fail("workflow.run_not_found");
  return translating(() =>
    executor.transaction(async (tx) => {
      const steps = await queryRows<Pick<WorkflowStepRow, "step_key" | "created_at" | "id">>(
        tx,
        lockVisibleStepKeys(workflowRunId, visible),
      );
      const [run] = await queryRows<WorkflowRunRow>(tx, lockVisibleRun(workflowRunId, visible, "no key update"));
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      return steps
        .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1))
        .map((s) => s.step_key);
    }),
  );
}

export interface WorkflowStepPayloadUpdate {
  scope: OrganizationScope;
  workflowRunId: string;
  stepId: string;
  /** The step's job, which must still be PENDING (not claimed, not finished). */
  jobId: string;
  payload: unknown;
}

/**
 * Replace the payload of a workflow step and of its job in one statement, only while that job is
 * still PENDING (the job row is locked first, so a claim either comes before and the update does
 * nothing, or after and runs the new payload). Returns whether it updated; false also when the
 * step, its job or its run (in `scope`) do not match. An unstorable payload is
 * `job.invalid_payload` (or `payload.too_large` / `payload.too_deep`) and writes nothing.
 */
export async function updateWorkflowStepAndPendingJobPayload(
  executor: Executor,
  input: WorkflowStepPayloadUpdate,
): Promise<boolean> {
  const visible = scopeCondition(runOrganization, input?.scope);
  const payload = jsonText(input.payload, "job.invalid_payload", "payload");
  if (!isUuid(input.workflowRunId) || !isUuid(input.stepId) || !isUuid(input.jobId)) return false;
  const [row] = await translating(() =>
    queryRows<{ jobs: number | string; steps: number | string }>(
      executor,
      replacePendingPayload(input, payload, visible),
    ),
  );
  return Number(row!.jobs) === 1 && Number(row!.steps) === 1;
}
