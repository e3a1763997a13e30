import { sql } from "drizzle-orm";
import { RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import type { RawRow } from "../jobs/record.ts";
import { CANCEL_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import { jobAttempts, jobEvents, jobQueue, workflowRuns, workflowSteps } from "../schema/index.ts";
import { checkTextSize, fail, isStorableText, isUuid } from "../validate.ts";
import { runFromRow, type WorkflowRunRecord } from "./records.ts";
import { internalState, propagateTerminal } from "./release.ts";
import { exclusiveReleaseLock, requireReadCommitted } from "./release-lock.ts";

export interface CancelWorkflowRunInput {
  workflowRunId: string;
  organizationId?: string;
  reason?: string;
  lastErrorCode?: string;
  lastErrorMessage?: string;
}

const lockJobs = (runId: string) => sql`
  select j.id from ${jobQueue} j join ${workflowSteps} s on s.job_id = j.id
  where s.workflow_run_id = ${runId} order by j.id for update of j`;

/**
 * Cancel a run: every pending or running step and its job is canceled (running handlers see
 * their signal abort through the `runledger_cancel` notification), open gates close as
 * CANCELED, and the run becomes CANCELED. A run that already finished is returned unchanged.
 * Locks follow the engine's order — job rows, the run's exclusive release lock, job rows
 * again, step rows, the run row — so it queues behind in-flight completions instead of
 * deadlocking with them.
 */
export async function cancelWorkflowRun(executor: Executor, input: CancelWorkflowRunInput): Promise<WorkflowRunRecord> {
  if (!isUuid(input.workflowRunId)) fail("workflow.run_not_found");
  if (input.organizationId !== undefined && !isUuid(input.organizationId)) fail("workflow.run_not_found");
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
      await tx.execute(lockJobs(runId));
      await exclusiveReleaseLock(tx, runId);
      await tx.execute(lockJobs(runId));
      await tx.execute(sql`select id from ${workflowSteps} where workflow_run_id = ${runId} order by id for update`);
      const [run] = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowRuns} where id = ${runId}
          ${input.organizationId === undefined ? sql`` : sql`and organization_id = ${input.organizationId}`}
          for update`,
      );
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      if (run.status !== "RUNNING" && run.status !== "WAITING_FOR_EXTERNAL") return runFromRow(run);
      // Canceled first, so releases reached from here on are no-ops.
      await tx.execute(
        sql`update ${workflowRuns} set status = 'CANCELED', finished_at = coalesce(finished_at, now()) where id = ${runId}`,
      );

      // Jobs of enqueued/running steps: cancel job, attempt and event in one statement.
      const canceledJobs = await queryRows<{ job_id: string; step_id: string }>(
        tx,
        sql`
        with canceled as (
          update ${jobQueue} j set status = 'CANCELED', finished_at = now(), worker_id = null, last_heartbeat_at = null,
            lease_expires_at = null, status_reason = ${reason}, updated_at = now()
          from ${workflowSteps} s
          where s.workflow_run_id = ${runId} and s.job_id = j.id and s.status in ('ENQUEUED', 'RUNNING')
            and j.status in ('PENDING', 'LEASED')
          returning j.id, j.run_number, j.attempt, j.stage, s.id as step_id
        ),
        attempts as (
          update ${jobAttempts} a set finished_at = now() from canceled c
          where a.job_id = c.id and a.run_number = c.run_number and a.attempt = c.attempt and a.finished_at is null
        ),
        events as (
          insert into ${jobEvents} (job_id, run_number, attempt, event_type, stage, payload)
          select id, run_number, nullif(attempt, 0), 'CANCELED', stage, jsonb_build_object('reason', ${reason}::text)
          from canceled
        )
        select id as job_id, step_id, pg_notify(${CANCEL_CHANNEL}, id::text) from canceled`,
      );
      void canceledJobs;

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
      const [final] = await queryRows<RawRow>(tx, sql`select * from ${workflowRuns} where id = ${runId}`);
      return runFromRow(final!);
    });
  } catch (error) {
    throw toQueryError(error);
  }
}
