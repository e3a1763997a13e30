import { type SQL, sql } from "drizzle-orm";
import type { JobStatus } from "../../../core/index.ts";
import { jobQueue } from "../../schema/index.ts";
import { cancelableStatuses, terminalStatuses } from "./ledger.ts";

/*
 * Bulk reads and actions over `job_queue` (jobs/bulk.ts). Built per call: the filter decides the
 * condition. Batches walk the creation-time index by keyset.
 */

/** `(a, b, c)`: one parameter per value (drizzle's template turns an array into a list, not an array). */
const textList = (values: readonly string[]) =>
  sql`(${sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  )})`;

/** The columns a bulk filter (`JobBulkFilter`, jobs/bulk.ts) narrows by. */
export interface BulkFilterFields {
  /** Only jobs in these statuses (default: any the action applies to). */
  statuses?: readonly JobStatus[];
  /** Only jobs of this exact type. */
  jobType?: string;
  /** Created at or after / before this time. */
  createdAfter?: Date;
  createdBefore?: Date;
  /** Finished at or after / before this time (unfinished jobs never match these). */
  finishedAfter?: Date;
  finishedBefore?: Date;
}

/** What a bulk filter selects, already checked (jobs/bulk.ts); `visible` is the scope's condition. */
export interface BulkConditions extends BulkFilterFields {
  visible: SQL;
}

/** The filter as one condition over `job_queue`. */
export function bulkCondition(filter: BulkConditions): SQL {
  const parts: SQL[] = [filter.visible];
  if (filter.statuses !== undefined) parts.push(statusIn(filter.statuses));
  if (filter.jobType !== undefined) parts.push(sql`job_type = ${filter.jobType}`);
  const bounds = [
    [filter.createdAfter, sql`created_at >=`],
    [filter.createdBefore, sql`created_at <`],
    [filter.finishedAfter, sql`finished_at >=`],
    [filter.finishedBefore, sql`finished_at <`],
  ] as const;
  for (const [value, compare] of bounds) {
    if (value !== undefined) parts.push(sql`${compare} ${value.toISOString()}::timestamptz`);
  }
  return sql.join(parts, sql` and `);
}

/** Jobs in one of `statuses` (each a parameter). */
export function statusIn(statuses: readonly JobStatus[]): SQL {
  return sql`status::text in ${textList(statuses)}`;
}

/** Jobs in one of `statuses` that back no workflow step (a requeue passes over those). */
export function standaloneIn(statuses: readonly JobStatus[]): SQL {
  return sql`${statusIn(statuses)} and workflow_step_id is null`;
}

/** Jobs with one of `ids` (each a parameter; a bulk batch holds at most 500). */
export function idIn(ids: readonly string[]): SQL {
  return sql`id in ${textList(ids)}`;
}

/** A row of `bulkCounts`. */
export type BulkCountsRow = { matched: number; cancelable: number; requeueable: number };

/**
 * How many of the first `limit + 1` jobs `where` matches a cancel or a requeue would change: the
 * extra row only tells that there are more.
 */
export function bulkCounts(where: SQL, limit: number): SQL {
  return sql`select count(*)::int as matched,
          count(*) filter (where status in (${cancelableStatuses}))::int as cancelable,
          count(*) filter (where status in (${terminalStatuses})
            and workflow_step_id is null)::int as requeueable
        from (select status, workflow_step_id from ${jobQueue} where ${where} limit ${limit + 1}) m`;
}

/** A row of `lockBulkBatch`: the creation time as text keeps its microseconds for the keyset. */
export type BulkBatchRow = { id: string; created_at: string };

/**
 * Lock the next `size` jobs `where` and `eligible` match, in creation order after `after`: a
 * batch of a bulk action, in its own transaction.
 */
export function lockBulkBatch(
  where: SQL,
  eligible: SQL,
  after: { createdAt: string; id: string } | undefined,
  size: number,
): SQL {
  return sql`select id, created_at::text as created_at from ${jobQueue}
            where ${where} and ${eligible}
              ${after === undefined ? sql`` : sql`and (created_at, id) > (${after.createdAt}::timestamptz, ${after.id}::uuid)`}
            order by created_at, id limit ${size} for update`;
}
