import { type SQL, sql } from "drizzle-orm";
import { RUN_TERMINAL_CHANNEL, WORKFLOWS_CHANNEL } from "../../notify.ts";
import { statement } from "../../query.ts";
import {
  jobQueue,
  workflowRunMutations,
  workflowRuns,
  workflowStepDependencies,
  workflowSteps,
} from "../../schema/index.ts";
import type { WorkflowEdgeRow, WorkflowRunRow, WorkflowStepRow } from "./rows.ts";

/*
 * The statements of the operations that change a run from outside its jobs: cancel, external
 * completion, append, retry and the payload update. Each runs under the locks of workflows/
 * run-locks.ts; what a change sets off in the dependents is propagate.ts's.
 */

/** Steps by id, in creation order (`created_at, id`), as the operations return them. */
export const readSteps = statement<WorkflowStepRow>(
  "runledger_workflow_read_steps",
  sql`select * from ${workflowSteps} where id = any(${sql.placeholder("ids")}::uuid[]) order by created_at, id`,
);

/**
 * Tell dashboards and waiters that a run changed (`runledger_workflows`), and read it. Rows:
 * `WorkflowRunRow`.
 */
export const readRunAnnounced = statement<WorkflowRunRow>(
  "runledger_workflow_read_run_announced",
  sql`select *, pg_notify(${WORKFLOWS_CHANNEL}, id::text) from ${workflowRuns} where id = ${sql.placeholder("id")}::uuid`,
);

/** `runledger_workflows` for a run whose row this statement does not read. */
export const announceRun = statement(
  "runledger_workflow_announce_run",
  sql`select pg_notify(${WORKFLOWS_CHANNEL}, ${sql.placeholder("id")}::text)`,
);

// Cancel.

/**
 * The run CANCELED before anything else, so that releases reached afterwards are no-ops, and
 * announced as finished to `waitForWorkflowRun`.
 */
export const cancelRunRow = statement(
  "runledger_workflow_cancel_run",
  sql`update ${workflowRuns} set status = 'CANCELED', finished_at = coalesce(finished_at, now())
    where id = ${sql.placeholder("id")}::uuid
    returning pg_notify(${RUN_TERMINAL_CHANNEL}, id::text)`,
);

/** The jobs of a run's enqueued and running steps, as the condition `cancelLockedJobs` takes (over `job_queue`). */
export function jobsOfLiveSteps(runId: string): SQL {
  return sql`id in (select s.job_id from ${workflowSteps} s
          where s.workflow_run_id = ${runId} and s.status in ('ENQUEUED', 'RUNNING') and s.job_id is not null)`;
}

/** Every step of the run not yet finished becomes CANCELED with the cancellation's reason. Rows: their ids. */
export const cancelLiveSteps = statement<Pick<WorkflowStepRow, "id">>(
  "runledger_workflow_cancel_live_steps",
  sql`update ${workflowSteps} set status = 'CANCELED', finished_at = now(),
      status_reason = ${sql.placeholder("reason")}::text, last_error_code = ${sql.placeholder("errorCode")}::text,
      last_error_message = ${sql.placeholder("errorMessage")}::text
    where workflow_run_id = ${sql.placeholder("runId")}::uuid
      and status in ('BLOCKED', 'ENQUEUED', 'RUNNING', 'WAITING_FOR_EXTERNAL')
    returning id`,
);

// External completion.

/** A run's steps, locked in id order, if `visible` (over `r.organization_id`) sees the run. Rows: `WorkflowStepRow`. */
export function lockVisibleRunSteps(runId: string, visible: SQL): SQL {
  return sql`select s.* from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
          where s.workflow_run_id = ${runId} and ${visible}
          order by s.id for update of s`;
}

/** Close an external gate with its terminal status. Rows: the step after. */
export const finishExternalStep = statement<WorkflowStepRow>(
  "runledger_workflow_finish_external_step",
  sql`update ${workflowSteps} set status = ${sql.placeholder("status")}::runledger.workflow_step_status,
      finished_at = now(), status_reason = ${sql.placeholder("reason")}::text,
      last_error_code = ${sql.placeholder("errorCode")}::text, last_error_message = ${sql.placeholder("errorMessage")}::text
    where id = ${sql.placeholder("id")}::uuid
    returning *`,
);

// Appends and retries: the run's mutation ledger.

/** Record an append or a retry under its idempotency key. */
export const insertMutation = statement(
  "runledger_workflow_insert_mutation",
  sql`insert into ${workflowRunMutations} (id, workflow_run_id, mutation_key, metadata, request)
    values (${sql.placeholder("id")}::uuid, ${sql.placeholder("runId")}::uuid, ${sql.placeholder("mutationKey")}::text,
      ${sql.placeholder("metadata")}::jsonb, ${sql.placeholder("request")}::jsonb)`,
);

/** An append already recorded under the key, and whether it asked for the same (`request`). */
export const appendRecorded = statement<{ same: boolean }>(
  "runledger_workflow_append_recorded",
  sql`select request = ${sql.placeholder("request")}::jsonb as same from ${workflowRunMutations}
    where workflow_run_id = ${sql.placeholder("runId")}::uuid and mutation_key = ${sql.placeholder("mutationKey")}::text`,
);

/**
 * A retry already recorded under the key, whether it asked for the same (`request`: compared
 * without the keys that record its outcome), and the stored request with that outcome.
 */
export const retryRecorded = statement<{ same: boolean; request: Record<string, string[]> }>(
  "runledger_workflow_retry_recorded",
  sql`select (request - 'retried_step_keys' - 'reopened_step_keys') = ${sql.placeholder("request")}::jsonb as same,
      request
    from ${workflowRunMutations}
    where workflow_run_id = ${sql.placeholder("runId")}::uuid and mutation_key = ${sql.placeholder("mutationKey")}::text`,
);

// Retry.

/** An edge as the retry reads it. */
export type RunEdge = Pick<WorkflowEdgeRow, "prerequisite_step_id" | "dependent_step_id" | "release_mode">;

/** A run's edges, for the retry to find which canceled steps it reopens. */
export const runEdges = statement<RunEdge>(
  "runledger_workflow_run_edges",
  sql`select prerequisite_step_id, dependent_step_id, release_mode from ${workflowStepDependencies}
    where workflow_run_id = ${sql.placeholder("runId")}::uuid`,
);

/** Jobs by id, as the condition `requeueLockedJobs` takes (over `job_queue`). */
export function jobsWithIds(jobIds: readonly string[]): SQL {
  return sql`id = any(${sql.param([...jobIds])}::uuid[])`;
}

/** Retried steps whose jobs were requeued: ENQUEUED again, their end cleared, the retry's reason. */
export const reenqueueSteps = statement(
  "runledger_workflow_reenqueue_steps",
  sql`update ${workflowSteps} set status = 'ENQUEUED', started_at = null, finished_at = null,
      status_reason = ${sql.placeholder("reason")}::text, last_error_code = null, last_error_message = null
    where id = any(${sql.placeholder("ids")}::uuid[])`,
);

/** Jobs that stay in the ledger without their step (the step is released anew, with a new job). */
export const unlinkJobs = statement(
  "runledger_workflow_unlink_jobs",
  sql`update ${jobQueue} set workflow_step_id = null, updated_at = now()
    where id = any(${sql.placeholder("ids")}::uuid[])`,
);

/** Steps a retry runs again or reopens: BLOCKED without a job, their end cleared; their counters are recounted next. */
export const reblockSteps = statement(
  "runledger_workflow_reblock_steps",
  sql`update ${workflowSteps} set status = 'BLOCKED', job_id = null, started_at = null, finished_at = null,
      status_reason = null, last_error_code = null, last_error_message = null
    where id = any(${sql.placeholder("ids")}::uuid[])`,
);

// Step updates.

/**
 * A run's steps locked in id order (the order appends use), if the run is `visible` (over
 * `r.organization_id`). Rows: their keys, creation times and ids.
 */
export function lockVisibleStepKeys(runId: string, visible: SQL): SQL {
  return sql`select s.step_key, s.created_at, s.id from ${workflowSteps} s
          where s.workflow_run_id = ${runId}
            and exists (select 1 from ${workflowRuns} r where r.id = ${runId} and ${visible})
          order by s.id for update of s`;
}

/**
 * Replace a step's payload and its job's in one statement, only while the job is PENDING and
 * still linked both ways to a step of a run `visible` (over `r.organization_id`) sees. The job row
 * is locked first, so a claim either comes before (nothing changes) or after (it runs the new
 * payload). Rows: one, with how many jobs and steps it changed.
 */
export function replacePendingPayload(
  ids: { workflowRunId: string; stepId: string; jobId: string },
  payload: string,
  visible: SQL,
): SQL {
  return sql`
      with job as (
        update ${jobQueue} j set payload = ${payload}::jsonb, updated_at = now()
        where j.id = ${ids.jobId} and j.status = 'PENDING' and j.workflow_step_id = ${ids.stepId}
          and exists (
            select 1 from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
            where s.id = ${ids.stepId} and s.job_id = ${ids.jobId} and s.workflow_run_id = ${ids.workflowRunId}
              and ${visible}
          )
        returning j.id
      ),
      step as (
        update ${workflowSteps} s set payload = ${payload}::jsonb
        where s.id = ${ids.stepId} and exists (select 1 from job)
        returning s.id
      )
      select (select count(*) from job) as jobs, (select count(*) from step) as steps`;
}
