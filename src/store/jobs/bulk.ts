import type { SQL } from "drizzle-orm";
import {
  JOB_STATUSES,
  type JobStatus,
  type OrganizationScope,
  scopedOrganization,
  TERMINAL_JOB_STATUSES,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import {
  type BulkBatchRow,
  type BulkCountsRow,
  type BulkFilterFields,
  bulkCondition,
  bulkCounts,
  idIn,
  lockBulkBatch,
  standaloneIn,
  statusIn,
} from "../sql/jobs/bulk.ts";
import { cancelLockedJobs, requeueLockedJobs } from "../sql/jobs/cancel.ts";
import { CANCELABLE_JOB_STATUSES } from "../sql/jobs/ledger.ts";
import { jobScope } from "../sql/jobs/reads.ts";
import { checkIdentifierLength, checkTextSize, fail, isBlank, isStorableText, isValidDate } from "../validate.ts";
import { settleWorkflowSteps } from "../workflows/settle.ts";

/*
 * Acting on many jobs at once, by filter, for operators (the CLI's `jobs cancel --filter`, the
 * dashboard's "requeue all dead letters of this type"). Each batch is one transaction that locks
 * its jobs in creation order and applies the single-job rules (`cancelLockedJobs`,
 * `requeueLockedJobs`) to them, so a bulk action is exactly many single actions: a job that
 * changed status meanwhile is passed over, never forced. Batches walk the creation-time index
 * by keyset, so a long action neither holds locks for long nor rereads what it did.
 */

/** Which jobs a bulk read or action selects. */
export interface JobBulkFilter extends BulkFilterFields {
  /** Whose jobs: one organization's, or `ALL_ORGANIZATIONS`. Required. */
  scope: OrganizationScope;
  /** Act on at most this many jobs (default 10,000, at most 1,000,000). */
  limit?: number;
}

/** A bulk action: the filter and the reason recorded on every job it changes. */
export interface JobBulkAction extends JobBulkFilter {
  /** The jobs' `status_reason` and their events' `reason`. */
  reason?: string;
}

/** What `countJobs` found. */
export interface JobBulkCount {
  /** Jobs the filter matches (at most `limit`, then `capped`). */
  matched: number;
  /** Of those, how many `cancelJobs` would cancel (PENDING or LEASED). */
  cancelable: number;
  /** Of those, how many `requeueJobs` would requeue (finished, and not a workflow step's). */
  requeueable: number;
  /** The count stopped at `limit`: there are more. */
  capped: boolean;
}

/** What a bulk action did. */
export interface JobBulkResult {
  /** Jobs changed. */
  count: number;
  /** Transactions it took. */
  batches: number;
}

export const BULK_DEFAULT_LIMIT = 10_000;
const BULK_MAX_LIMIT = 1_000_000;
const BATCH_SIZE = 500;

const CANCELABLE: readonly JobStatus[] = CANCELABLE_JOB_STATUSES;
const REQUEUEABLE: readonly JobStatus[] = TERMINAL_JOB_STATUSES;

function invalid(field: string): never {
  fail("job.invalid_pagination", { field });
}

/** The filter as one condition over `job_queue`, checked before anything runs. */
function conditionOf(filter: JobBulkFilter): { where: SQL; limit: number } {
  if (filter === null || typeof filter !== "object") invalid("filter");
  scopedOrganization(filter.scope);
  const limit = filter.limit ?? BULK_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > BULK_MAX_LIMIT) invalid("limit");
  const visible = jobScope(filter.scope);
  if (filter.statuses !== undefined) {
    if (!Array.isArray(filter.statuses) || filter.statuses.length === 0) invalid("statuses");
    for (const status of filter.statuses) {
      if (!(JOB_STATUSES as readonly string[]).includes(status)) invalid("statuses");
    }
  }
  if (filter.jobType !== undefined) {
    if (typeof filter.jobType !== "string" || isBlank(filter.jobType) || !isStorableText(filter.jobType)) {
      invalid("jobType");
    }
    checkIdentifierLength(filter.jobType, "jobType");
  }
  for (const field of ["createdAfter", "createdBefore", "finishedAfter", "finishedBefore"] as const) {
    if (filter[field] !== undefined && !isValidDate(filter[field])) invalid(field);
  }
  return { where: bulkCondition({ ...filter, visible }), limit };
}

function checkReason(reason: string | undefined): void {
  if (reason !== undefined && (typeof reason !== "string" || isBlank(reason) || !isStorableText(reason))) {
    invalid("reason");
  }
  checkTextSize(reason, "reason");
}

/**
 * How many jobs of `scope` the filter matches, and how many of them a bulk cancel or requeue
 * would change: the dry run for `cancelJobs` and `requeueJobs`. Counts at most `limit` jobs.
 */
export async function countJobs(executor: Executor, filter: JobBulkFilter): Promise<JobBulkCount> {
  const { where, limit } = conditionOf(filter);
  const [row] = await translating(() => queryRows<BulkCountsRow>(executor, bulkCounts(where, limit)));
  const matched = Number(row!.matched);
  // The extra row read only tells that there are more; drop it from every figure.
  const over = matched > limit;
  return {
    matched: Math.min(matched, limit),
    cancelable: Math.min(Number(row!.cancelable), limit),
    requeueable: Math.min(Number(row!.requeueable), limit),
    capped: over,
  };
}

/**
 * Run `act` over the matching jobs in `eligible` statuses, a batch per transaction: lock the next
 * batch in creation order (rows that no longer match after the lock are skipped), act on them,
 * and continue after the last one read, until `limit` jobs were changed or none are left.
 */
async function inBatches(
  executor: Executor,
  filter: JobBulkFilter,
  eligible: SQL,
  act: (tx: Executor, ids: string[]) => Promise<number>,
): Promise<JobBulkResult> {
  const { where, limit } = conditionOf(filter);
  let count = 0;
  let batches = 0;
  let after: { createdAt: string; id: string } | undefined;
  await translating(async () => {
    while (count < limit) {
      const size = Math.min(BATCH_SIZE, limit - count);
      const read = await executor.transaction(async (tx) => {
        const rows = await queryRows<BulkBatchRow>(tx, lockBulkBatch(where, eligible, after, size));
        if (rows.length === 0) return { last: undefined, changed: 0 };
        const changed = await act(
          tx,
          rows.map((r) => r.id),
        );
        const last = rows.at(-1)!;
        return { last: { createdAt: last.created_at, id: last.id }, changed };
      });
      if (read.last === undefined) break;
      batches++;
      count += read.changed;
      after = read.last;
    }
  });
  return { count, batches };
}

/**
 * Cancel the PENDING and LEASED jobs of `scope` the filter matches (statuses outside those two are
 * ignored), as `cancelJob` would one by one: running workers are fenced out and told, and a
 * workflow step's job also cancels its step and settles the step's dependents. At most `limit`
 * jobs, in batches of 500 (one transaction each).
 */
export async function cancelJobs(executor: Executor, action: JobBulkAction): Promise<JobBulkResult> {
  conditionOf(action);
  checkReason(action.reason);
  const reason = action.reason ?? "CANCELED";
  const statuses = (action.statuses ?? CANCELABLE).filter((s) => CANCELABLE.includes(s));
  if (statuses.length === 0) return { count: 0, batches: 0 };
  return inBatches(executor, action, statusIn(statuses), async (tx, ids) => {
    const rows = await cancelLockedJobs(tx, idIn(ids), reason);
    const steps = rows
      .filter((row) => row.workflow_step_id !== null)
      .map((row) => ({
        jobId: row.id,
        stepId: row.workflow_step_id as string,
        status: "CANCELED" as const,
        reason,
      }));
    await settleWorkflowSteps(tx, steps);
    return rows.length;
  });
}

/**
 * Requeue the finished jobs (SUCCEEDED, DEAD_LETTERED, CANCELED) of `scope` the filter matches as
 * new runs, as `requeueJob` would one by one. Jobs that back a workflow step are passed over (a
 * direct requeue would desynchronize their run: retry the run instead). At most `limit` jobs, in
 * batches of 500 (one transaction each).
 */
export async function requeueJobs(executor: Executor, action: JobBulkAction): Promise<JobBulkResult> {
  conditionOf(action);
  checkReason(action.reason);
  const reason = action.reason ?? "REQUEUED";
  const statuses = (action.statuses ?? REQUEUEABLE).filter((s) => REQUEUEABLE.includes(s));
  if (statuses.length === 0) return { count: 0, batches: 0 };
  return inBatches(executor, action, standaloneIn(statuses), async (tx, ids) => {
    const rows = await requeueLockedJobs(tx, idIn(ids), { reason, event: { bulk: true } });
    return rows.length;
  });
}
