import type { SQL } from "drizzle-orm";
import { isTerminalJobStatus, type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { byId, canceledAmong, cancelLockedJobs, lockJobInScope, requeueLockedJobs } from "../sql/jobs/cancel.ts";
import { CANCELABLE_JOB_STATUSES, type JobQueueRow } from "../sql/jobs/ledger.ts";
import { jobScope } from "../sql/jobs/reads.ts";
import { checkTextSize, fail, isBlank, isStorableText, isUuid } from "../validate.ts";
import { settleWorkflowStep } from "../workflows/settle.ts";
import { type JobRecord, jobFromRow } from "./record.ts";

export interface JobMutationInput {
  jobId: string;
  /** Act on a job of this organization, or of any (`ALL_ORGANIZATIONS`). Required. */
  scope: OrganizationScope;
  reason?: string;
}

/** The checked input's scope condition on `organization_id` (`scope.required` first, before anything else). */
function checkInput(input: JobMutationInput): SQL {
  const visible = jobScope(input?.scope);
  if (!isUuid(input.jobId)) fail("job.not_found");
  if (input.reason !== undefined && (isBlank(input.reason) || !isStorableText(input.reason))) {
    fail("job.invalid_state_transition", { field: "reason" });
  }
  checkTextSize(input.reason, "reason");
  return visible;
}

/** Lock a job in scope (`visible`) or explain why there is none. */
async function lockJob(tx: Executor, input: JobMutationInput, visible: SQL): Promise<JobQueueRow> {
  const [row] = await queryRows<JobQueueRow>(tx, lockJobInScope(input.jobId, visible));
  if (row === undefined) throw new RunledgerError("job.not_found", { details: { jobId: input.jobId } });
  return row;
}

/**
 * Cancel a PENDING or LEASED job (the running worker is fenced out at once and told on the
 * `runledger_cancel` channel); a workflow step's job also cancels the step and settles its
 * dependents. `job.not_found` when no visible job; `job.invalid_state_transition` otherwise.
 */
export async function cancelJob(executor: Executor, input: JobMutationInput): Promise<JobRecord> {
  const visible = checkInput(input);
  return translating(() =>
    executor.transaction(async (tx) => {
      const current = await lockJob(tx, input, visible);
      if (!(CANCELABLE_JOB_STATUSES as readonly string[]).includes(current.status)) {
        throw new RunledgerError("job.invalid_state_transition", {
          details: { jobId: input.jobId, status: current.status },
        });
      }
      const reason = input.reason ?? "CANCELED";
      const [row] = await cancelLockedJobs(tx, byId(input.jobId), reason);
      const job = jobFromRow(row!);
      if (job.workflowStepId !== null) {
        await settleWorkflowStep(tx, { jobId: job.id, stepId: job.workflowStepId, status: "CANCELED", reason });
      }
      return job;
    }),
  );
}

/**
 * Run a finished job (SUCCEEDED, DEAD_LETTERED or CANCELED) again as a new run: run number + 1,
 * attempt 0, stage `queued`, progress and checkpoint cleared. Jobs that back a workflow step are
 * refused (`job.workflow_requeue_not_supported`): requeuing one would desynchronize its run.
 */
export async function requeueJob(executor: Executor, input: JobMutationInput): Promise<JobRecord> {
  const visible = checkInput(input);
  return translating(() =>
    executor.transaction(async (tx) => {
      const current = await lockJob(tx, input, visible);
      if (current.workflow_step_id !== null) {
        throw new RunledgerError("job.workflow_requeue_not_supported", { details: { jobId: input.jobId } });
      }
      if (!isTerminalJobStatus(current.status)) {
        throw new RunledgerError("job.invalid_state_transition", {
          details: { jobId: input.jobId, status: current.status },
        });
      }
      const [row] = await requeueLockedJobs(tx, byId(input.jobId), { reason: input.reason ?? "REQUEUED" });
      return jobFromRow(row!);
    }),
  );
}

/**
 * Which of `jobIds` are canceled now. A worker checks a `runledger_cancel` notification here
 * before it aborts a handler: any database user can send one, so the notification only says
 * where to look.
 */
export async function canceledJobIds(executor: Executor, jobIds: readonly string[]): Promise<Set<string>> {
  const ids = jobIds.filter(isUuid);
  if (ids.length === 0) return new Set();
  const rows = await translating(() => canceledAmong.run(executor, { ids: `{${ids.join(",")}}` }));
  return new Set(rows.map((row) => row.id));
}
