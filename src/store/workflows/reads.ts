import { type OrganizationScope, WORKFLOW_RUN_STATUSES, type WorkflowRunStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { Page } from "../rows.ts";
import { idempotencyScopeCondition, scopeCondition } from "../sql/scope.ts";
import {
  edgesPage,
  jobOrganization,
  latestRunByType,
  runById,
  runByIdempotencyKey,
  runCount,
  runIdForJob,
  runOrganization,
  runsPage,
  stepsPage,
} from "../sql/workflows/reads.ts";
import type { WorkflowEdgeWithKeysRow, WorkflowRunRow, WorkflowStepRow } from "../sql/workflows/rows.ts";
import { checkLimit, checkPage, escapeLike, fail, isUuid, matchable } from "../validate.ts";
import {
  dependencyFromRow,
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
  const visible = scopeCondition(runOrganization, scope);
  if (!isUuid(runId)) return null;
  const [row] = await translating(() => queryRows<WorkflowRunRow>(executor, runById(runId, visible)));
  return row === undefined ? null : runFromRow(row);
}

export interface WorkflowRunCursor {
  createdAt: Date;
  id: string;
}

function checkStatus(status: WorkflowRunStatus | undefined): void {
  if (status !== undefined && !(WORKFLOW_RUN_STATUSES as readonly string[]).includes(status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
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
  const visible = scopeCondition(runOrganization, filter?.scope);
  checkLimit(filter.limit);
  checkPage({ after: filter.after, text: { workflowTypeContains: filter.workflowTypeContains } });
  checkStatus(filter.status);
  const contains = filter.workflowTypeContains === undefined ? undefined : escapeLike(filter.workflowTypeContains);
  const rows = await translating(() =>
    queryRows<WorkflowRunRow>(
      executor,
      runsPage({ visible, status: filter.status, contains }, filter.limit, filter.after),
    ),
  );
  const items = rows.slice(0, filter.limit).map(runFromRow);
  const last = items.at(-1);
  return { items, next: rows.length > filter.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
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
  const visible = scopeCondition(runOrganization, input?.scope);
  checkLimit(input.limit);
  checkPage({ after: input.after });
  if (!isUuid(input.workflowRunId)) return { items: [], next: null };
  const rows = await translating(() =>
    queryRows<WorkflowStepRow>(executor, stepsPage(input.workflowRunId, visible, input.limit, input.after)),
  );
  const items = rows.slice(0, input.limit).map(stepFromRow);
  const last = items.at(-1);
  return { items, next: rows.length > input.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
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
  const visible = scopeCondition(runOrganization, input?.scope);
  checkLimit(input.limit);
  const after = input.after;
  if (
    after !== undefined &&
    (after === null || typeof after !== "object" || !isUuid(after.dependentStepId) || !isUuid(after.prerequisiteStepId))
  ) {
    fail("job.invalid_pagination", { field: "after" });
  }
  if (!isUuid(input.workflowRunId)) return { items: [], next: null };
  const rows = await translating(() =>
    queryRows<WorkflowEdgeWithKeysRow>(executor, edgesPage(input.workflowRunId, visible, input.limit, after)),
  );
  const items = rows.slice(0, input.limit).map(dependencyFromRow);
  const last = items.at(-1);
  return {
    items,
    next:
      rows.length > input.limit && last
        ? { dependentStepId: last.dependentStepId, prerequisiteStepId: last.prerequisiteStepId }
        : null,
  };
}

/** The newest run of a workflow type in the scope (`created_at`, then id), or null. */
export async function getLatestWorkflowRunByType(
  executor: Executor,
  input: { scope: OrganizationScope; workflowType: string },
): Promise<WorkflowRunRecord | null> {
  const visible = scopeCondition(runOrganization, input?.scope);
  if (!matchable(input.workflowType)) return null;
  const [row] = await translating(() =>
    queryRows<WorkflowRunRow>(executor, latestRunByType(input.workflowType, visible)),
  );
  return row === undefined ? null : runFromRow(row);
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
  const keyed = idempotencyScopeCondition(runOrganization, input?.scope);
  if (!matchable(input.workflowType) || !matchable(input.idempotencyKey)) return null;
  const [row] = await translating(() =>
    queryRows<WorkflowRunRow>(executor, runByIdempotencyKey(input.workflowType, input.idempotencyKey, keyed)),
  );
  return row === undefined ? null : runFromRow(row);
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
  const jobVisible = scopeCondition(jobOrganization, options?.scope);
  const runVisible = scopeCondition(runOrganization, options.scope);
  if (!isUuid(jobId)) return null;
  const [row] = await translating(() =>
    queryRows<Pick<WorkflowRunRow, "id">>(executor, runIdForJob(jobId, jobVisible, runVisible)),
  );
  return row?.id ?? null;
}

/** How many runs the scope sees, optionally of one status and whose type contains a substring (case-insensitive). */
export async function countWorkflowRuns(
  executor: Executor,
  filter: { scope: OrganizationScope; status?: WorkflowRunStatus; workflowTypeContains?: string },
): Promise<number> {
  const visible = scopeCondition(runOrganization, filter?.scope);
  checkPage({ text: { workflowTypeContains: filter.workflowTypeContains } });
  checkStatus(filter.status);
  const contains = filter.workflowTypeContains === undefined ? undefined : escapeLike(filter.workflowTypeContains);
  const [row] = await translating(() =>
    queryRows<{ n: number | string }>(executor, runCount({ visible, status: filter.status, contains })),
  );
  return Number(row!.n);
}
