import { sql } from "drizzle-orm";
import { type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import { jobQueue, workflowRuns, workflowSteps } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
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
  const visible = scopeCondition(sql`r.organization_id`, options?.scope);
  if (!isUuid(workflowRunId)) fail("workflow.run_not_found");
  try {
    return await executor.transaction(async (tx) => {
      const steps = await queryRows<{ step_key: string; created_at: string; id: string }>(
        tx,
        sql`select s.step_key, s.created_at, s.id from ${workflowSteps} s
          where s.workflow_run_id = ${workflowRunId}
            and exists (select 1 from ${workflowRuns} r where r.id = ${workflowRunId} and ${visible})
          order by s.id for update of s`,
      );
      const [run] = await queryRows<{ id: string }>(
        tx,
        sql`select r.id from ${workflowRuns} r where r.id = ${workflowRunId} and ${visible} for no key update`,
      );
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      return steps
        .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1))
        .map((s) => s.step_key);
    });
  } catch (error) {
    throw toQueryError(error);
  }
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
  const visible = scopeCondition(sql`r.organization_id`, input?.scope);
  const payload = jsonText(input.payload, "job.invalid_payload", "payload");
  if (!isUuid(input.workflowRunId) || !isUuid(input.stepId) || !isUuid(input.jobId)) return false;
  try {
    const [row] = await queryRows<{ jobs: number | string; steps: number | string }>(
      executor,
      sql`
      with job as (
        update ${jobQueue} j set payload = ${payload}::jsonb, updated_at = now()
        where j.id = ${input.jobId} and j.status = 'PENDING' and j.workflow_step_id = ${input.stepId}
          and exists (
            select 1 from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
            where s.id = ${input.stepId} and s.job_id = ${input.jobId} and s.workflow_run_id = ${input.workflowRunId}
              and ${visible}
          )
        returning j.id
      ),
      step as (
        update ${workflowSteps} s set payload = ${payload}::jsonb
        where s.id = ${input.stepId} and exists (select 1 from job)
        returning s.id
      )
      select (select count(*) from job) as jobs, (select count(*) from step) as steps`,
    );
    return Number(row!.jobs) === 1 && Number(row!.steps) === 1;
  } catch (error) {
    throw toQueryError(error);
  }
}
