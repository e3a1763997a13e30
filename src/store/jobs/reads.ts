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
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { Page } from "../rows.ts";
import { toDate, toDateOrNull, toNumberOrNull } from "../rows.ts";
import type { JobQueueRow } from "../sql/jobs/ledger.ts";
import {
  attemptJobScope,
  type JobAttemptRow,
  type JobEventRow,
  type JobMetricsRow,
  type JobsPageRow,
  jobAttemptsPage,
  jobById,
  jobEventsPage,
  jobMetrics,
  jobScope,
  jobsPage,
  metricsScope,
} from "../sql/jobs/reads.ts";
import { checkIdCursor, checkLimit, checkPage, fail, isInt32, isUuid, isValidDate } from "../validate.ts";
import { type JobRecord, jobFromRow } from "./record.ts";

/** One job, or null when it does not exist or is outside `scope`. */
export async function getJobById(
  executor: Executor,
  jobId: string,
  scope: OrganizationScope,
): Promise<JobRecord | null> {
  const visible = jobScope(scope);
  if (!isUuid(jobId)) return null;
  const [row] = await translating(() => queryRows<JobQueueRow>(executor, jobById(jobId, visible)));
  return row === undefined ? null : jobFromRow(row);
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
  const visible = jobScope(filter?.scope);
  checkLimit(filter.limit);
  checkPage({ after: filter.after, text: { jobTypeContains: filter.jobTypeContains } });
  if (filter.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(filter.status)) {
    fail("job.invalid_pagination", { field: "status" });
  }
  for (const field of ["createdAfter", "createdBefore"] as const) {
    if (filter[field] !== undefined && !isValidDate(filter[field])) fail("job.invalid_pagination", { field });
  }
  const rows = await translating(() =>
    queryRows<JobsPageRow>(
      executor,
      jobsPage({
        visible,
        status: filter.status,
        jobTypeContains: filter.jobTypeContains,
        createdAfter: filter.createdAfter,
        createdBefore: filter.createdBefore,
        after: filter.after,
        limit: filter.limit,
        pageBytes: LIST_JOBS_PAGE_BYTES,
      }),
    ),
  );
  const fetched = Number(rows[0]?.fetched ?? 0);
  const items = rows.slice(0, filter.limit).map(jobFromRow);
  const last = items.at(-1);
  return { items, next: fetched > items.length && last ? { createdAt: last.createdAt, id: last.id } : null };
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
  const visible = jobScope(input?.scope);
  checkLimit(input.limit);
  checkIdCursor(input.after);
  if (!isUuid(input.jobId)) return { items: [], next: null };
  const rows = await translating(() =>
    queryRows<JobEventRow>(executor, jobEventsPage(input.jobId, visible, input.after, input.limit + 1)),
  );
  const items = rows.slice(0, input.limit).map(eventFromRow);
  return { items, next: rows.length > input.limit ? items.at(-1)!.id : null };
}

function eventFromRow(row: JobEventRow): JobEventRecord {
  return {
    id: Number(row.id),
    jobId: row.job_id,
    runNumber: Number(row.run_number),
    attempt: toNumberOrNull(row.attempt),
    eventType: row.event_type,
    stage: row.stage ?? null,
    progressDone: toNumberOrNull(row.progress_done),
    progressTotal: toNumberOrNull(row.progress_total),
    payload: row.payload,
    occurredAt: toDate(row.occurred_at),
  };
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
  const visible = attemptJobScope(input?.scope);
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
  const rows = await translating(() =>
    queryRows<JobAttemptRow>(executor, jobAttemptsPage(input.jobId, visible, after, input.limit + 1)),
  );
  const items = rows.slice(0, input.limit).map(attemptFromRow);
  const last = items.at(-1);
  return {
    items,
    next: rows.length > input.limit && last ? { runNumber: last.runNumber, attempt: last.attempt } : null,
  };
}

function attemptFromRow(row: JobAttemptRow): JobAttemptRecord {
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
  const visible = metricsScope(options.scope);
  const rows = await translating(() => queryRows<JobMetricsRow>(executor, jobMetrics(all, visible, options.jobType)));
  return rows.map(metricsFromRow);
}

function metricsFromRow(row: JobMetricsRow): JobMetricsRecord {
  return {
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
  };
}
