import { and, asc, desc, eq, gt, gte, ilike, lt, type SQL, sql } from "drizzle-orm";
import {
  type ClaimOrigin,
  JOB_STATUSES,
  type JobEventType,
  type JobFailureKind,
  type JobStatus,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import { toDate, toDateOrNull, toNumberOrNull } from "../rows.ts";
import { jobAttempts, jobDefinitions, jobEvents, jobQueue } from "../schema/index.ts";
import { checkLimit, checkPage, escapeLike, fail, isInt32, isUuid, isValidDate } from "../validate.ts";
import { type JobRecord, jobFromRow, jobFromSelected, type RawRow } from "./record.ts";

/** One job, or null when it does not exist or belongs to another organization than `organizationId`. */
export async function getJobById(
  executor: Executor,
  jobId: string,
  options: { organizationId?: string } = {},
): Promise<JobRecord | null> {
  if (!isUuid(jobId)) return null;
  if (options.organizationId !== undefined && !isUuid(options.organizationId)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select * from ${jobQueue} where id = ${jobId} ${
        options.organizationId === undefined ? sql`` : sql`and organization_id = ${options.organizationId}`
      }`,
    );
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
  organizationId?: string;
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

export interface Page<T, C> {
  items: T[];
  /** Pass as `after` for the next page; null on the last page. */
  next: C | null;
}

/** Jobs newest first (`created_at desc, id desc`), a page at a time. */
export async function listJobs(executor: Executor, filter: JobListFilter): Promise<Page<JobRecord, JobCursor>> {
  checkLimit(filter.limit);
  checkPage({ after: filter.after, text: { jobTypeContains: filter.jobTypeContains } });
  if (filter.organizationId !== undefined && !isUuid(filter.organizationId)) return { items: [], next: null };
  if (filter.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(filter.status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
  for (const field of ["createdAfter", "createdBefore"] as const) {
    if (filter[field] !== undefined && !isValidDate(filter[field])) fail("job.invalid_pagination", { field });
  }
  const conditions: (SQL | undefined)[] = [
    filter.createdAfter === undefined ? undefined : gte(jobQueue.createdAt, filter.createdAfter),
    filter.createdBefore === undefined ? undefined : lt(jobQueue.createdAt, filter.createdBefore),
    filter.organizationId === undefined ? undefined : eq(jobQueue.organizationId, filter.organizationId),
    filter.status === undefined ? undefined : eq(jobQueue.status, filter.status),
    filter.jobTypeContains === undefined
      ? undefined
      : ilike(jobQueue.jobType, `%${escapeLike(filter.jobTypeContains)}%`),
    filter.after === undefined
      ? undefined
      : // Compare with the cursor row's own time: a Date holds milliseconds, the column microseconds,
        // so jobs created in one statement would otherwise be skipped at a page boundary.
        sql`(${jobQueue.createdAt}, ${jobQueue.id}) < (coalesce((select c.created_at from ${jobQueue} c
          where c.id = ${filter.after.id}::uuid), ${filter.after.createdAt.toISOString()}::timestamptz), ${filter.after.id}::uuid)`,
  ];
  try {
    const rows = await executor
      .select()
      .from(jobQueue)
      .where(and(...conditions))
      .orderBy(desc(jobQueue.createdAt), desc(jobQueue.id))
      .limit(filter.limit + 1);
    const items = rows.slice(0, filter.limit).map(jobFromSelected);
    const last = items.at(-1);
    return { items, next: rows.length > filter.limit && last ? { createdAt: last.createdAt, id: last.id } : null };
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

/** A job's events in order; `afterId` continues from the last event seen. Org-scoped through the job. */
export async function listJobEvents(
  executor: Executor,
  input: { jobId: string; organizationId?: string; limit: number; afterId?: number },
): Promise<JobEventRecord[]> {
  checkLimit(input.limit);
  checkPage({ afterId: input.afterId });
  if (!isUuid(input.jobId)) return [];
  if (input.organizationId !== undefined && !isUuid(input.organizationId)) return [];
  try {
    const visible = executor
      .select({ id: jobQueue.id })
      .from(jobQueue)
      .where(
        and(
          eq(jobQueue.id, input.jobId),
          input.organizationId === undefined ? undefined : eq(jobQueue.organizationId, input.organizationId),
        ),
      );
    const rows = await executor
      .select()
      .from(jobEvents)
      .where(
        and(
          sql`${jobEvents.jobId} in ${visible}`,
          input.afterId === undefined ? undefined : gt(jobEvents.id, input.afterId),
        ),
      )
      .orderBy(asc(jobEvents.id))
      .limit(input.limit);
    return rows.map((row) => ({ ...row, id: Number(row.id) }));
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

/**
 * A job's attempts in order (run, then attempt), `after` continuing from the last one seen.
 * Org-scoped through the job: another organization's job has no attempts.
 */
export async function listJobAttempts(
  executor: Executor,
  input: { jobId: string; organizationId?: string; limit: number; after?: { runNumber: number; attempt: number } },
): Promise<JobAttemptRecord[]> {
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
  if (!isUuid(input.jobId) || (input.organizationId !== undefined && !isUuid(input.organizationId))) return [];
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select a.* from ${jobAttempts} a join ${jobQueue} j on j.id = a.job_id
        where a.job_id = ${input.jobId}
          ${input.organizationId === undefined ? sql`` : sql`and j.organization_id = ${input.organizationId}`}
          ${after === undefined ? sql`` : sql`and (a.run_number, a.attempt) > (${after.runNumber}, ${after.attempt})`}
        order by a.run_number, a.attempt
        limit ${input.limit}`,
    );
    return rows.map(attemptFromRow);
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
 * One row per job definition (zero-filled), from the `job_metrics_rollup` view, summed over
 * organizations or restricted to one. Percentiles are the highest of the organizations'.
 */
export async function getJobMetrics(
  executor: Executor,
  options: { organizationId?: string; jobType?: string } = {},
): Promise<JobMetricsRecord[]> {
  if (options.organizationId !== undefined && !isUuid(options.organizationId))
    fail("job.invalid_pagination", { field: "organizationId" });
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
        ${options.organizationId === undefined ? sql`` : sql`and m.organization_id = ${options.organizationId}`}
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
