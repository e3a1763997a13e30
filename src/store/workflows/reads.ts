import { sql } from "drizzle-orm";
import { type OrganizationScope, WORKFLOW_RUN_STATUSES, type WorkflowRunStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { Page, RawRow } from "../rows.ts";
import { toDate } from "../rows.ts";
import { jobQueue, workflowRuns, workflowStepDependencies, workflowSteps } from "../schema/index.ts";
import { idempotencyScopeCondition, scopeCondition } from "../scope.ts";
import { checkLimit, checkPage, escapeLike, fail, isUuid, matchable } from "../validate.ts";
import {
  runFromRow,
  stepFromRow,
  type WorkflowRunRecord,
  type WorkflowStepDependencyRecord,
  type WorkflowStepRecord,
} from "./records.ts";

/** One run, or null when it does not exist or is outside `scope`. */
export async function getWorkflowRunById(
  executor: Executor,
  runId: string,
  scope: OrganizationScope,
): Promise<WorkflowRunRecord | null> {
  const visible = scopeCondition(sql`r.organization_id`, scope);
  if (!isUuid(runId)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select r.* from ${workflowRuns} r where r.id = ${runId} and ${visible}`,
    );
    return row === undefined ? null : runFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

export interface WorkflowRunCursor {
  createdAt: Date;
  id: string;
}

/** Runs newest first, filtered, a page at a time (keyset pagination). */
export async function listWorkflowRuns(
  executor: Executor,
  filter: {
    /** Whose runs: one organization's, or `ALL_ORGANIZATIONS`. Required. */
    scope: OrganizationScope;
    status?: WorkflowRunStatus;
    workflowTypeContains?: string;
    limit: number;
    after?: WorkflowRunCursor;
  },
): Promise<Page<WorkflowRunRecord, WorkflowRunCursor>> {
  const visible = scopeCondition(sql`r.organization_id`, filter?.scope);
  checkLimit(filter.limit);
  checkPage({ after: filter.after, text: { workflowTypeContains: filter.workflowTypeContains } });
  if (filter.status !== undefined && !(WORKFLOW_RUN_STATUSES as readonly string[]).includes(filter.status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
  const contains = filter.workflowTypeContains === undefined ? undefined : escapeLike(filter.workflowTypeContains);
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select r.* from ${workflowRuns} r
        where ${visible}
          ${filter.status === undefined ? sql`` : sql`and r.status = ${filter.status}`}
          ${contains === undefined ? sql`` : sql`and r.workflow_type ilike ${`%${contains}%`}`}
          ${
            filter.after === undefined
              ? sql``
              : // The cursor row's own time: a Date holds milliseconds, the column microseconds.
                sql`and (r.created_at, r.id) < (coalesce((select c.created_at from ${workflowRuns} c
                  where c.id = ${filter.after.id}::uuid), ${filter.after.createdAt.toISOString()}::timestamptz), ${filter.after.id}::uuid)`
          }
        order by r.created_at desc, r.id desc
        limit ${filter.limit + 1}`,
    );
    const items = rows.slice(0, filter.limit).map(runFromRow);
    const last = items.at(-1);
    return { items, next: rows.length > filter.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Where the previous page of `listWorkflowSteps` ended. */
export interface WorkflowStepCursor {
  createdAt: Date;
  id: string;
}

/**
 * A run's steps in creation order (`created_at, id`), a page at a time (`after`: the last step
 * seen). Empty when the run is outside `scope`.
 */
export async function listWorkflowSteps(
  executor: Executor,
  input: { workflowRunId: string; scope: OrganizationScope; limit: number; after?: WorkflowStepCursor },
): Promise<Page<WorkflowStepRecord, WorkflowStepCursor>> {
  const visible = scopeCondition(sql`r.organization_id`, input?.scope);
  checkLimit(input.limit);
  checkPage({ after: input.after });
  if (!isUuid(input.workflowRunId)) return { items: [], next: null };
  const after = input.after;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select s.* from ${workflowSteps} s join ${workflowRuns} r on r.id = s.workflow_run_id
        where s.workflow_run_id = ${input.workflowRunId} and ${visible}
          ${
            after === undefined
              ? sql``
              : // The cursor row's own time: a Date holds milliseconds, the column microseconds.
                sql`and (s.created_at, s.id) > (coalesce((select c.created_at from ${workflowSteps} c
                  where c.id = ${after.id}::uuid), ${after.createdAt.toISOString()}::timestamptz), ${after.id}::uuid)`
          }
        order by s.created_at, s.id
        limit ${input.limit + 1}`,
    );
    const items = rows.slice(0, input.limit).map(stepFromRow);
    const last = items.at(-1);
    return { items, next: rows.length > input.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Where the previous page of `listWorkflowStepDependencies` ended: the last edge seen. */
export interface WorkflowStepDependencyCursor {
  dependentStepId: string;
  prerequisiteStepId: string;
}

/**
 * A run's dependency edges with both steps' keys, in the order of their dependent steps, then of
 * their prerequisites (each by creation), a page at a time (`after`: the last edge seen). Empty
 * when the run is outside `scope`.
 */
export async function listWorkflowStepDependencies(
  executor: Executor,
  input: { workflowRunId: string; scope: OrganizationScope; limit: number; after?: WorkflowStepDependencyCursor },
): Promise<Page<WorkflowStepDependencyRecord, WorkflowStepDependencyCursor>> {
  const visible = scopeCondition(sql`r.organization_id`, input?.scope);
  checkLimit(input.limit);
  const after = input.after;
  if (
    after !== undefined &&
    (after === null || typeof after !== "object" || !isUuid(after.dependentStepId) || !isUuid(after.prerequisiteStepId))
  ) {
    fail("job.invalid_pagination", { field: "after" });
  }
  if (!isUuid(input.workflowRunId)) return { items: [], next: null };
  const createdAt = (stepId: string) => sql`(select c.created_at from ${workflowSteps} c where c.id = ${stepId}::uuid)`;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select e.*, p.step_key as prerequisite_step_key, d.step_key as dependent_step_key
        from ${workflowStepDependencies} e
        join ${workflowRuns} r on r.id = e.workflow_run_id
        join ${workflowSteps} p on p.id = e.prerequisite_step_id
        join ${workflowSteps} d on d.id = e.dependent_step_id
        where e.workflow_run_id = ${input.workflowRunId} and ${visible}
          ${
            after === undefined
              ? sql``
              : sql`and (d.created_at, d.id, p.created_at, p.id) > (${createdAt(after.dependentStepId)},
                  ${after.dependentStepId}::uuid, ${createdAt(after.prerequisiteStepId)}, ${after.prerequisiteStepId}::uuid)`
          }
        order by d.created_at, d.id, p.created_at, p.id
        limit ${input.limit + 1}`,
    );
    const items: WorkflowStepDependencyRecord[] = rows.slice(0, input.limit).map((row) => ({
      workflowRunId: row.workflow_run_id,
      prerequisiteStepId: row.prerequisite_step_id,
      prerequisiteStepKey: row.prerequisite_step_key,
      dependentStepId: row.dependent_step_id,
      dependentStepKey: row.dependent_step_key,
      releaseMode: row.release_mode,
      createdAt: toDate(row.created_at),
    }));
    const last = items.at(-1);
    return {
      items,
      next:
        rows.length > input.limit && last
          ? { dependentStepId: last.dependentStepId, prerequisiteStepId: last.prerequisiteStepId }
          : null,
    };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** The newest run of a workflow type in the scope (`created_at`, then id), or null. */
export async function getLatestWorkflowRunByType(
  executor: Executor,
  input: { scope: OrganizationScope; workflowType: string },
): Promise<WorkflowRunRecord | null> {
  const visible = scopeCondition(sql`r.organization_id`, input?.scope);
  if (!matchable(input.workflowType)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select r.* from ${workflowRuns} r where r.workflow_type = ${input.workflowType} and ${visible}
        order by r.created_at desc, r.id desc limit 1`,
    );
    return row === undefined ? null : runFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * The run enqueued under an idempotency key, or null. Keys are unique per workflow type within
 * an organization: `scope` names which organization's key (`ALL_ORGANIZATIONS`: the key of runs
 * enqueued without an organization, the scope `enqueueWorkflowRun` gave it).
 */
export async function getWorkflowRunByIdempotencyKey(
  executor: Executor,
  input: { scope: OrganizationScope; workflowType: string; idempotencyKey: string },
): Promise<WorkflowRunRecord | null> {
  const keyed = idempotencyScopeCondition(sql`r.organization_id`, input?.scope);
  if (!matchable(input.workflowType) || !matchable(input.idempotencyKey)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select r.* from ${workflowRuns} r
        where r.workflow_type = ${input.workflowType} and r.idempotency_key = ${input.idempotencyKey} and ${keyed}`,
    );
    return row === undefined ? null : runFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * The run whose step a job backs, or null for a plain job (or a job, or run, the scope does not
 * see: both the job's organization and the run's must be in it).
 */
export async function getWorkflowRunIdForJob(
  executor: Executor,
  jobId: string,
  options: { scope: OrganizationScope },
): Promise<string | null> {
  const jobVisible = scopeCondition(sql`j.organization_id`, options?.scope);
  const runVisible = scopeCondition(sql`r.organization_id`, options.scope);
  if (!isUuid(jobId)) return null;
  try {
    const [row] = await queryRows<{ id: string }>(
      executor,
      sql`select r.id from ${jobQueue} j
        join ${workflowSteps} s on s.id = j.workflow_step_id
        join ${workflowRuns} r on r.id = s.workflow_run_id
        where j.id = ${jobId} and ${jobVisible} and ${runVisible}`,
    );
    return row?.id ?? null;
  } catch (error) {
    throw toQueryError(error);
  }
}

/** How many runs the scope sees, optionally of one status and whose type contains a substring (case-insensitive). */
export async function countWorkflowRuns(
  executor: Executor,
  filter: { scope: OrganizationScope; status?: WorkflowRunStatus; workflowTypeContains?: string },
): Promise<number> {
  const visible = scopeCondition(sql`r.organization_id`, filter?.scope);
  checkPage({ text: { workflowTypeContains: filter.workflowTypeContains } });
  if (filter.status !== undefined && !(WORKFLOW_RUN_STATUSES as readonly string[]).includes(filter.status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
  const contains = filter.workflowTypeContains === undefined ? undefined : escapeLike(filter.workflowTypeContains);
  try {
    const [row] = await queryRows<{ n: number | string }>(
      executor,
      sql`select count(*) as n from ${workflowRuns} r
        where ${visible}
          ${filter.status === undefined ? sql`` : sql`and r.status = ${filter.status}`}
          ${contains === undefined ? sql`` : sql`and r.workflow_type ilike ${`%${contains}%`}`}`,
    );
    return Number(row!.n);
  } catch (error) {
    throw toQueryError(error);
  }
}
