import { type SQL, sql } from "drizzle-orm";
import type { JobStatus } from "../../../core/index.ts";
import { clockAt } from "../../query.ts";
import type { DbRow } from "../../rows.ts";
import {
  type jobAttemptLog,
  jobAttempts,
  jobDefinitions,
  type jobEventLog,
  jobEvents,
  jobQueue,
} from "../../schema/index.ts";
import { escapeLike } from "../../validate.ts";
import { idempotencyScopeCondition, scopeCondition } from "../scope.ts";
import type { JobQueueRow } from "./ledger.ts";

/*
 * Reads of jobs for applications and operators (jobs/reads.ts, lookups.ts, queue-depth.ts). Each
 * is built per call: a scope, a filter or a cursor changes its shape. None is on the hot path.
 */

/**
 * The scope's condition on a `job_queue` row's `organization_id` (unqualified: every read names
 * one job table). Throws `scope.required` when `scope` is not a scope, so operations take it first.
 */
export function jobScope(scope: unknown): SQL {
  return scopeCondition(sql`organization_id`, scope);
}

/** One job by id, in scope. Rows: `JobQueueRow`. */
export function jobById(jobId: string, visible: SQL): SQL {
  return sql`select * from ${jobQueue} where id = ${jobId} and ${visible}`;
}

/** What `jobsPage` lists: checked by `listJobs`. */
export interface JobsPageFilter {
  visible: SQL;
  status?: JobStatus;
  jobTypeContains?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  after?: { createdAt: Date; id: string };
  limit: number;
  /** Most bytes of row text past the first row. */
  pageBytes: number;
}

/** A row of `jobsPage`: the job, and how many rows the page read (`limit + 1` means more). */
export type JobsPageRow = JobQueueRow & { rn: number; fetched: number };

/**
 * Jobs newest first, `limit + 1` of them measured in the database, which sends only those within
 * `pageBytes` (the first always): a page of large payloads is never read into memory whole.
 */
export function jobsPage(filter: JobsPageFilter): SQL {
  const conditions: SQL[] = [
    filter.visible,
    ...(filter.createdAfter === undefined
      ? []
      : [sql`created_at >= ${filter.createdAfter.toISOString()}::timestamptz`]),
    ...(filter.createdBefore === undefined
      ? []
      : [sql`created_at < ${filter.createdBefore.toISOString()}::timestamptz`]),
    ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
    ...(filter.jobTypeContains === undefined ? [] : [sql`job_type ilike ${`%${escapeLike(filter.jobTypeContains)}%`}`]),
    ...(filter.after === undefined
      ? []
      : // Compare with the cursor row's own time: a Date holds milliseconds, the column microseconds,
        // so jobs created in one statement would otherwise be skipped at a page boundary.
        [
          sql`(created_at, id) < (coalesce((select c.created_at from ${jobQueue} c
            where c.id = ${filter.after.id}::uuid), ${filter.after.createdAt.toISOString()}::timestamptz), ${filter.after.id}::uuid)`,
        ]),
  ];
  return sql`
      with candidates as (
        select id, row_number() over w as rn,
          sum(octet_length(t::text)) over w as running
        from (select * from ${jobQueue} where ${sql.join(conditions, sql` and `)}
          order by created_at desc, id desc limit ${filter.limit + 1}) t
        window w as (order by created_at desc, id desc)
      )
      select j.*, c.rn, (select count(*) from candidates)::int as fetched
      from candidates c join ${jobQueue} j on j.id = c.id
      where c.rn = 1 or c.running <= ${filter.pageBytes}
      order by c.rn`;
}

/** A row of the `job_events` view (the same columns as `job_event_log`). */
export type JobEventRow = DbRow<typeof jobEventLog>;

/**
 * A job's events after event id `after`, in id order, `limit` of them; scoped through the job, so
 * another organization's job has none. Rows: `JobEventRow`.
 */
export function jobEventsPage(jobId: string, visible: SQL, after: number | undefined, limit: number): SQL {
  return sql`select * from ${jobEvents}
    where job_id in (select id from ${jobQueue} where id = ${jobId} and ${visible})
      ${after === undefined ? sql`` : sql`and id > ${after}`}
    order by id
    limit ${limit}`;
}

/** A row of the `job_attempts` view (the same columns as `job_attempt_log`). */
export type JobAttemptRow = DbRow<typeof jobAttemptLog>;

/**
 * A job's attempts after (run, attempt) `after`, in that order, `limit` of them; scoped through
 * the job. `visible` is over the job row aliased `j`. Rows: `JobAttemptRow`.
 */
export function jobAttemptsPage(
  jobId: string,
  visible: SQL,
  after: { runNumber: number; attempt: number } | undefined,
  limit: number,
): SQL {
  return sql`select a.* from ${jobAttempts} a join ${jobQueue} j on j.id = a.job_id
        where a.job_id = ${jobId} and ${visible}
          ${after === undefined ? sql`` : sql`and (a.run_number, a.attempt) > (${after.runNumber}, ${after.attempt})`}
        order by a.run_number, a.attempt
        limit ${limit}`;
}

/** The scope's condition for `jobAttemptsPage`, over the job row `j`. */
export function attemptJobScope(scope: unknown): SQL {
  return scopeCondition(sql`j.organization_id`, scope);
}

/** A row of `jobMetrics`: sums as the driver returns them (int8 and numeric may be text). */
export type JobMetricsRow = { job_type: string } & Record<
  | "pending_count"
  | "leased_count"
  | "stale_leases"
  | "succeeded_24h"
  | "retryable_24h"
  | "terminal_24h"
  | "panicked_24h"
  | "timeout_24h"
  | "dead_lettered_24h",
  number | string
> &
  Record<"p50_duration_ms_24h" | "p95_duration_ms_24h", number | string | null>;

/** The scope's condition for `jobMetrics`, over the rollup row `m`. */
export function metricsScope(scope: unknown): SQL {
  return scopeCondition(sql`m.organization_id`, scope);
}

/**
 * One row per job definition (zero-filled) from the `job_metrics_rollup` view: one organization's
 * (`visible`) or, with `all`, summed over all; percentiles the highest of the organizations'.
 */
export function jobMetrics(all: boolean, visible: SQL, jobType: string | undefined): SQL {
  return sql`
      select d.job_type,
        coalesce(sum(m.pending_count), 0) as pending_count, coalesce(sum(m.leased_count), 0) as leased_count,
        coalesce(sum(m.stale_leases), 0) as stale_leases, coalesce(sum(m.succeeded_24h), 0) as succeeded_24h,
        coalesce(sum(m.retryable_24h), 0) as retryable_24h, coalesce(sum(m.terminal_24h), 0) as terminal_24h,
        coalesce(sum(m.panicked_24h), 0) as panicked_24h, coalesce(sum(m.timeout_24h), 0) as timeout_24h,
        coalesce(sum(m.dead_lettered_24h), 0) as dead_lettered_24h,
        max(m.p50_duration_ms_24h) as p50_duration_ms_24h, max(m.p95_duration_ms_24h) as p95_duration_ms_24h
      from ${jobDefinitions} d
      left join runledger.job_metrics_rollup m on m.job_type = d.job_type
        ${all ? sql`` : sql`and ${visible}`}
      ${jobType === undefined ? sql`` : sql`where d.job_type = ${jobType}`}
      group by d.job_type
      order by d.job_type`;
}

/** A job's id and payload (`jobByIdempotencyKey`, `latestJobForRun`). */
export type JobPayloadRow = Pick<JobQueueRow, "id" | "payload">;

/** The idempotency scope's condition on `organization_id` (`scope.required` when there is none). */
export function idempotencyScope(scope: unknown): SQL {
  return idempotencyScopeCondition(sql`organization_id`, scope);
}

/** The job holding an idempotency key in its scope (`keyed`): through the unique key's index. */
export function jobByIdempotencyKey(jobType: string, idempotencyKey: string, keyed: SQL): SQL {
  return sql`select id, payload from ${jobQueue}
        where job_type = ${jobType} and idempotency_key = ${idempotencyKey} and ${keyed}`;
}

/**
 * The newest job of a type whose payload's `run_id` is `runId` (a uuid, in any case): not
 * indexed, it reads the type's jobs in scope.
 */
export function latestJobForRun(jobType: string, runId: string, visible: SQL): SQL {
  return sql`select id, payload from ${jobQueue}
        where job_type = ${jobType} and lower(payload ->> 'run_id') = ${runId.toLowerCase()} and ${visible}
        order by created_at desc, id desc
        limit 1`;
}

/** A row of `queueDepth`. */
export type QueueDepthRow = { job_type: string; depth: number; oldest: number };

/**
 * Due pending jobs per type in scope, as of `now` (the server's unless given): counted through
 * the claim index's pending rows, deepest first, at most `maxTypes` types.
 */
export function queueDepth(visible: SQL, now: Date | undefined, maxTypes: number): SQL {
  const clock = clockAt(now);
  return sql`select job_type, count(*)::int as depth,
          greatest(extract(epoch from ${clock} - min(next_run_at)), 0)::float8 as oldest
        from ${jobQueue}
        where finished_at is null and status = 'PENDING' and next_run_at <= ${clock} and ${visible}
        group by job_type
        order by depth desc, job_type
        limit ${maxTypes}`;
}
