import { and, asc, eq, gt, type SQL, sql } from "drizzle-orm";
import {
  type ClaimOrigin,
  JOB_STATUSES,
  type JobEventType,
  type JobFailureKind,
  type JobStatus,
  MAX_JSON_BYTES,
  type OrganizationScope,
  scopedOrganization,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { Page, RawRow } from "../rows.ts";
import { toDate, toDateOrNull, toNumberOrNull } from "../rows.ts";
import { jobAttempts, jobDefinitions, jobEvents, jobQueue } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { checkIdCursor, checkLimit, checkPage, escapeLike, fail, isInt32, isUuid, isValidDate } from "../validate.ts";
import { type JobRecord, jobFromRow } from "./record.ts";

/** One job, or null when it does not exist or is outside `scope`. */
export async function getJobById(
  executor: Executor,
  jobId: string,
  scope: OrganizationScope,
): Promise<JobRecord | null> {
  const visible = scopeCondition(sql`organization_id`, scope);
  if (!isUuid(jobId)) return null;
  try {
    const [row] = await queryRows<RawRow>(executor, sql`select * from ${jobQueue} where id = ${jobId} and ${visible}`);
    return row === undefined ? null : jobFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Where the previous page of `listJobs` ended. */
export interface JobCursor {
  createdAt: Date;
  id: string;
}

export interface JobListFilter {
  /** Whose jobs: one organization's, or `ALL_ORGANIZATIONS`. Required. */
  scope: OrganizationScope;
  status?: JobStatus;
  /** Case-insensitive substring of the job type. */
  jobTypeContains?: string;
  /** Created at or after / before this time. */
  createdAfter?: Date;
  createdBefore?: Date;
  limit: number;
  /** Continue after this job (keyset pagination). */
  after?: JobCursor;
}

/**
 * Most bytes of row text one `listJobs` page carries (4 MiB): a job's payload, checkpoint and
 * result may each hold `MAX_JSON_BYTES`, so `limit` rows alone do not bound a page. A page ends
 * early once its rows reach the budget (with `next` set); it always holds at least one row.
 */
export const LIST_JOBS_PAGE_BYTES = 4 * MAX_JSON_BYTES;

/**
 * Jobs newest first (`created_at desc, id desc`), a page at a time: at most `limit` rows and,
 * past the first row, at most `LIST_JOBS_PAGE_BYTES` of row text.
 */
export async function listJobs(executor: Executor, filter: JobListFilter): Promise<Page<JobRecord, JobCursor>> {
  const visible = scopeCondition(sql`organization_id`, filter?.scope);
  checkLimit(filter.limit);
  checkPage({ after: filter.after, text: { jobTypeContains: filter.jobTypeContains } });
  if (filter.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(filter.status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
  for (const field of ["createdAfter", "createdBefore"] as const) {
    if (filter[field] !== undefined && !isValidDate(filter[field])) fail("job.invalid_pagination", { field });
  }
  const conditions: SQL[] = [
    visible,
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
  try {
    // The database measures the rows (`limit + 1` of them) and sends only those within the
    // budget, so a page of large payloads is never read into memory whole.
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with candidates as (
        select id, row_number() over w as rn,
          sum(octet_length(t::text)) over w as running
        from (select * from ${jobQueue} where ${sql.join(conditions, sql` and `)}
          order by created_at desc, id desc limit ${filter.limit + 1}) t
        window w as (order by created_at desc, id desc)
      )
      select j.*, c.rn, (select count(*) from candidates)::int as fetched
      from candidates c join ${jobQueue} j on j.id = c.id
      where c.rn = 1 or c.running <= ${LIST_JOBS_PAGE_BYTES}
      order by c.rn`,
    );
    const fetched = Number(rows[0]?.fetched ?? 0);
    const items = rows.slice(0, filter.limit).map(jobFromRow);
    const last = items.at(-1);
    return { items, next: fetched > items.length && last ? { createdAt: last.createdAt, id: last.id } : null };
  } catch (error) {
    throw toQueryError(error);
  }
}

export interface JobEventRecord {
  id: number;
  jobId: string;
  runNumber: number;
  attempt: number | null;
  eventType: JobEventType;
  stage: string | null;
  progressDone: number | null;
  progressTotal: number | null;
  payload: Record<string, unknown>;
  occurredAt: Date;
}

/**
 * A job's events in order, a page at a time (`after`: the last event id seen). Scoped through the
 * job: another organization's job has no events.
 */
export async function listJobEvents(
  executor: Executor,
  input: { jobId: string; scope: OrganizationScope; limit: number; after?: number },
): Promise<Page<JobEventRecord, number>> {
  const visible = scopeCondition(sql`${jobQueue.organizationId}`, input?.scope);
  checkLimit(input.limit);
  checkIdCursor(input.after);
  if (!isUuid(input.jobId)) return { items: [], next: null };
  try {
    const job = executor
      .select({ id: jobQueue.id })
      .from(jobQueue)
      .where(and(eq(jobQueue.id, input.jobId), visible));
    const rows = await executor
      .select()
      .from(jobEvents)
      .where(
        and(sql`${jobEvents.jobId} in ${job}`, input.after === undefined ? undefined : gt(jobEvents.id, input.after)),
      )
      .orderBy(asc(jobEvents.id))
      .limit(input.limit + 1);
    const items = rows.slice(0, input.limit).map((row) => ({ ...row, id: Number(row.id) }));
    return { items, next: rows.length > input.limit ? items.at(-1)!.id : null };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** One attempt of a job: a claim and how it ended. */
export interface JobAttemptRecord {
  id: string;
  jobId: string;
  runNumber: number;
  attempt: number;
  workerId: string;
  leasedAt: Date;
  startedAt: Date;
  /** Null while the attempt runs. */
  finishedAt: Date | null;
  /** The failure kind; null for a running, succeeded or canceled attempt. */
  outcome: JobFailureKind | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Set when the failure scheduled a retry. */
  retryDelayMs: number | null;
  claimOrigin: ClaimOrigin;
  /** When the worker recorded that the handler started (null for an unstarted prestart claim). */
  executionStartedPersistedAt: Date | null;
}

/** Where the previous page of `listJobAttempts` ended. */
export interface JobAttemptCursor {
  runNumber: number;
  attempt: number;
}

/**
 * A job's attempts in order (run, then attempt), a page at a time (`after`: the last attempt
 * seen). Scoped through the job: another organization's job has no attempts.
 */
export async function listJobAttempts(
  executor: Executor,
  input: { jobId: string; scope: OrganizationScope; limit: number; after?: JobAttemptCursor },
): Promise<Page<JobAttemptRecord, JobAttemptCursor>> {
  const visible = scopeCondition(sql`j.organization_id`, input?.scope);
  checkLimit(input.limit);
  const after = input.after;
  if (
    after !== undefined &&
    (after === null ||
      typeof after !== "object" ||
      !(isInt32(after.runNumber) && after.runNumber > 0) ||
      !(isInt32(after.attempt) && after.attempt > 0))
  ) {
    fail("job.invalid_pagination", { field: "after" });
  }
  if (!isUuid(input.jobId)) return { items: [], next: null };
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select a.* from ${jobAttempts} a join ${jobQueue} j on j.id = a.job_id
        where a.job_id = ${input.jobId} and ${visible}
          ${after === undefined ? sql`` : sql`and (a.run_number, a.attempt) > (${after.runNumber}, ${after.attempt})`}
        order by a.run_number, a.attempt
        limit ${input.limit + 1}`,
    );
    const items = rows.slice(0, input.limit).map(attemptFromRow);
    const last = items.at(-1);
    return {
      items,
      next: rows.length > input.limit && last ? { runNumber: last.runNumber, attempt: last.attempt } : null,
    };
  } catch (error) {
    throw toQueryError(error);
  }
}

function attemptFromRow(row: RawRow): JobAttemptRecord {
  return {
    id: row.id,
    jobId: row.job_id,
    runNumber: Number(row.run_number),
    attempt: Number(row.attempt),
    workerId: row.worker_id,
    leasedAt: toDate(row.leased_at),
    startedAt: toDate(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    outcome: row.outcome ?? null,
    errorCode: row.error_code ?? null,
    errorMessage: row.error_message ?? null,
    retryDelayMs: toNumberOrNull(row.retry_delay_ms),
    claimOrigin: row.claim_origin,
    executionStartedPersistedAt: toDateOrNull(row.execution_started_persisted_at),
  };
}

/** The window `getJobMetrics`' `…24h` counts cover, in seconds. */
export const JOB_METRICS_WINDOW_SECONDS = 86_400;

export interface JobMetricsRecord {
  jobType: string;
  /**
   * The window the `…24h` counts and percentiles cover, in seconds (24 hours). They count rows
   * that still exist: with a retention shorter than that (see `purgeFinished`), the window is in
   * effect the retention.
   */
  windowSeconds: number;
  pendingCount: number;
  leasedCount: number;
  staleLeases: number;
  succeeded24h: number;
  retryable24h: number;
  terminal24h: number;
  panicked24h: number;
  timeout24h: number;
  deadLettered24h: number;
  p50DurationMs24h: number | null;
  p95DurationMs24h: number | null;
}

/**
 * One row per job definition (zero-filled), from the `job_metrics_rollup` view, of the scope's
 * organization or summed over all. Percentiles are the highest of the organizations'.
 */
export async function getJobMetrics(
  executor: Executor,
  options: { scope: OrganizationScope; jobType?: string },
): Promise<JobMetricsRecord[]> {
  const organizationId = scopedOrganization(options?.scope);
  if (organizationId !== null && !isUuid(organizationId)) fail("job.invalid_pagination", { field: "organizationId" });
  const all = organizationId === null;
  const visible = scopeCondition(sql`m.organization_id`, options.scope);
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
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
      ${options.jobType === undefined ? sql`` : sql`where d.job_type = ${options.jobType}`}
      group by d.job_type
      order by d.job_type`,
    );
    return rows.map((row) => ({
      jobType: row.job_type,
      windowSeconds: JOB_METRICS_WINDOW_SECONDS,
      pendingCount: Number(row.pending_count),
      leasedCount: Number(row.leased_count),
      staleLeases: Number(row.stale_leases),
      succeeded24h: Number(row.succeeded_24h),
      retryable24h: Number(row.retryable_24h),
      terminal24h: Number(row.terminal_24h),
      panicked24h: Number(row.panicked_24h),
      timeout24h: Number(row.timeout_24h),
      deadLettered24h: Number(row.dead_lettered_24h),
      p50DurationMs24h: toNumberOrNull(row.p50_duration_ms_24h),
      p95DurationMs24h: toNumberOrNull(row.p95_duration_ms_24h),
    }));
  } catch (error) {
    throw toQueryError(error);
  }
}
