import { type SQL, sql } from "drizzle-orm";
import type { WorkflowRunStatus } from "../../../core/index.ts";
import { statement } from "../../query.ts";
import { jobQueue, workflowRuns, workflowStepDependencies, workflowSteps } from "../../schema/index.ts";
import type { WorkflowRunRow } from "./rows.ts";

/*
 * The reads of runs, steps and edges. Scoped statements take `visible`, a condition (scope.ts) over
 * `runOrganization` (and a job's over `jobOrganization`). List reads page by keyset, fetching one
 * row more than `limit` to know whether a next page exists.
 */

/** The run's organization in every workflow statement that takes a scope condition (runs as `r`). */
export const runOrganization = sql`r.organization_id`;

/** The job's organization, where a statement reads a run's job (jobs as `j`). */
export const jobOrganization = sql`j.organization_id`;

/** A run row read again by id, after the statements that changed it (no scope: the caller checked it). */
export const readRun = statement<WorkflowRunRow>(
  "runledger_workflow_read_run",
  sql`select * from ${workflowRuns} where id = ${sql.placeholder("id")}::uuid`,
);

/** One run, if `visible` sees it. Rows: `WorkflowRunRow`. */
export function runById(runId: string, visible: SQL): SQL {
  return sql`select r.* from ${workflowRuns} r where r.id = ${runId} and ${visible}`;
}

/** Run filters shared by the list and the count. */
export interface RunFilter {
  visible: SQL;
  status?: WorkflowRunStatus;
  /** Already escaped for LIKE. */
  contains?: string;
}

function runConditions(filter: RunFilter): SQL {
  return sql`${filter.visible}
          ${filter.status === undefined ? sql`` : sql`and r.status = ${filter.status}`}
          ${filter.contains === undefined ? sql`` : sql`and r.workflow_type ilike ${`%${filter.contains}%`}`}`;
}

/** A page of runs, newest first (`created_at desc, id desc`). Rows: `WorkflowRunRow`. */
export function runsPage(filter: RunFilter, limit: number, after?: { createdAt: Date; id: string }): SQL {
  return sql`select r.* from ${workflowRuns} r
        where ${runConditions(filter)}
          ${
            after === undefined
              ? sql``
              : // The cursor row's own time: a Date holds milliseconds, the column microseconds.
                sql`and (r.created_at, r.id) < (coalesce((select c.created_at from ${workflowRuns} c
                  where c.id = ${after.id}::uuid), ${after.createdAt.toISOString()}::timestamptz), ${after.id}::uuid)`
          }
        order by r.created_at desc, r.id desc
        limit ${limit + 1}`;
}

/** How many runs match. Rows: `{ n }` (int8: text or number, by driver). */
export function runCount(filter: RunFilter): SQL {
  return sql`select count(*) as n from ${workflowRuns} r
        where ${runConditions(filter)}`;
}

/** A page of a run's steps in creation order (`created_at, id`). Rows: `WorkflowStepRow`. */
export function stepsPage(runId: string, visible: SQL, limit: number, after?: { createdAt: Date; id: string }): SQL {
  return sql`select s.* from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
        where s.workflow_run_id = ${runId} and ${visible}
          ${
            after === undefined
              ? sql``
              : // The cursor row's own time: a Date holds milliseconds, the column microseconds.
                sql`and (s.created_at, s.id) > (coalesce((select c.created_at from ${workflowSteps} c
                  where c.id = ${after.id}::uuid), ${after.createdAt.toISOString()}::timestamptz), ${after.id}::uuid)`
          }
        order by s.created_at, s.id
        limit ${limit + 1}`;
}

/**
 * A page of a run's edges with both steps' keys, in the order of their dependent steps, then of
 * their prerequisites (each by creation). Rows: `WorkflowEdgeWithKeysRow`.
 */
export function edgesPage(
  runId: string,
  visible: SQL,
  limit: number,
  after?: { dependentStepId: string; prerequisiteStepId: string },
): SQL {
  const createdAt = (stepId: string) => sql`(select c.created_at from ${workflowSteps} c where c.id = ${stepId}::uuid)`;
  return sql`select e.*, p.step_key as prerequisite_step_key, d.step_key as dependent_step_key
        from ${workflowStepDependencies} e
        join ${workflowRuns} r on r.id = e.workflow_run_id
        join ${workflowSteps} p on p.id = e.prerequisite_step_id
        join ${workflowSteps} d on d.id = e.dependent_step_id
        where e.workflow_run_id = ${runId} and ${visible}
          ${
            after === undefined
              ? sql``
              : sql`and (d.created_at, d.id, p.created_at, p.id) > (${createdAt(after.dependentStepId)},
                  ${after.dependentStepId}::uuid, ${createdAt(after.prerequisiteStepId)}, ${after.prerequisiteStepId}::uuid)`
          }
        order by d.created_at, d.id, p.created_at, p.id
        limit ${limit + 1}`;
}

/** The newest run of a workflow type (`created_at`, then id). Rows: `WorkflowRunRow`. */
export function latestRunByType(workflowType: string, visible: SQL): SQL {
  return sql`select r.* from ${workflowRuns} r where r.workflow_type = ${workflowType} and ${visible}
        order by r.created_at desc, r.id desc limit 1`;
}

/** The run enqueued under an idempotency key (`keyed`: scope.ts's idempotency condition). Rows: `WorkflowRunRow`. */
export function runByIdempotencyKey(workflowType: string, idempotencyKey: string, keyed: SQL): SQL {
  return sql`select r.* from ${workflowRuns} r
        where r.workflow_type = ${workflowType} and r.idempotency_key = ${idempotencyKey} and ${keyed}`;
}

/** The run whose step a job backs, both visible (`jobVisible` over `j.`, `runVisible` over `r.`). Rows: `{ id }`. */
export function runIdForJob(jobId: string, jobVisible: SQL, runVisible: SQL): SQL {
  return sql`select r.id from ${jobQueue} j
        join ${workflowSteps} s on s.id = j.workflow_step_id
        join ${workflowRuns} r on r.id = s.workflow_run_id
        where j.id = ${jobId} and ${jobVisible} and ${runVisible}`;
}

/**
 * The finished runs among `ids` (checked uuids), by primary key, for the span that covers a run
 * from enqueue to its end. Rows: `FinishedRunRow`.
 */
export function finishedRuns(ids: readonly string[], visible: SQL): SQL {
  return sql`select r.id, r.workflow_type, r.organization_id, r.status, r.created_at, r.finished_at, r.trace_context
        from ${workflowRuns} r
        where r.id = any(${`{${ids.join(",")}}`}::uuid[]) and r.finished_at is not null and ${visible}`;
}

/** A finished run as `finishedRuns` reads it. */
export type FinishedRunRow = Pick<
  WorkflowRunRow,
  "id" | "workflow_type" | "organization_id" | "status" | "created_at" | "finished_at" | "trace_context"
>;
