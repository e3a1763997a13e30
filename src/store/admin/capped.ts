import { type OrganizationScope, scopedOrganization } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { type JobRecord, jobFromRow } from "../jobs/record.ts";
import { queryRows } from "../query.ts";
import { type DbRow, type Page, toDate, toDateOrNull } from "../rows.ts";
import type { jobQueue } from "../schema/index.ts";
import {
  jobStatusCounts,
  jobThroughput,
  leasedJobs,
  oldestDueJob,
  recentWorkers,
  type ThroughputRow,
} from "../sql/admin.ts";
import { checkPage, fail, isValidDate } from "../validate.ts";

/*
 * Reads for an operator's overview that stay fast on a table of millions of rows: each reads at
 * most `cap + 1` entries of one index (which ones: sql/admin.ts). One organization's figures
 * filter the same bounded read, so they cost what everyone's do, and are exact while the group is
 * under the cap and lower bounds (`capped`) beyond it. A page shows a capped count as "10,000+".
 */

/** Default number of rows a capped count reads per group. */
export const OVERVIEW_COUNT_CAP = 10_000;
const CAP_MAX = 1_000_000;

/** A count that stopped at its cap: `count` is exact when `capped` is false, a lower bound otherwise. */
export interface CappedCount {
  count: number;
  capped: boolean;
}

/** The statuses `countJobsByStatus` counts (queued, running, dead-lettered), each over its own index. */
export const COUNTED_JOB_STATUSES = ["PENDING", "LEASED", "DEAD_LETTERED"] as const;
export type CountedJobStatus = (typeof COUNTED_JOB_STATUSES)[number];

export interface JobCountsByStatus {
  /** Jobs now in each status, capped. */
  byStatus: Record<CountedJobStatus, CappedCount>;
  /**
   * Per job type, counted among the rows read for its status: exact when that status was not
   * capped, a lower bound (`capped`) when it was.
   */
  byType: { jobType: string; status: CountedJobStatus; count: number; capped: boolean }[];
}

export interface OverviewScope {
  /** Whose jobs: one organization's, or `ALL_ORGANIZATIONS`. Required. */
  scope: OrganizationScope;
  /** Rows read per group at most (default 10,000). */
  cap?: number;
}

/** The checked cap and whether the scope is every organization (`scope.required` when it is no scope). */
function boundsOf(input: OverviewScope): { cap: number; all: boolean } {
  const all = scopedOrganization(input?.scope) === null;
  const cap = input.cap ?? OVERVIEW_COUNT_CAP;
  if (!Number.isInteger(cap) || cap < 1 || cap > CAP_MAX) fail("job.invalid_pagination", { field: "cap" });
  return { cap, all };
}

/** `job.invalid_pagination` for a `now` that is not a valid date. */
function checkNow(now: unknown): void {
  if (now !== undefined && !isValidDate(now)) fail("job.invalid_pagination", { field: "now" });
}

/**
 * How many jobs are pending, leased and dead-lettered, in total and per job type. Pending and
 * leased jobs are counted among the first `cap + 1` unfinished jobs in claim order (leased ones
 * come first: they were claimed in that order), dead letters among the `cap + 1` latest.
 */
export async function countJobsByStatus(executor: Executor, input: OverviewScope): Promise<JobCountsByStatus> {
  const { cap } = boundsOf(input);
  return translating(async () => {
    const rows = await queryRows<StatusCountRow>(executor, jobStatusCounts(cap, input.scope));
    const scanned = { unfinished: 0, dead: 0 };
    const matched: Record<CountedJobStatus, number> = { PENDING: 0, LEASED: 0, DEAD_LETTERED: 0 };
    // A job that finished between the index read and the row read is read but not counted.
    const counted = (row: StatusCountRow) =>
      row.source === "dead" ? row.status === "DEAD_LETTERED" : row.status === "PENDING" || row.status === "LEASED";
    for (const row of rows) {
      scanned[row.source as "unfinished" | "dead"] += Number(row.scanned);
      if (counted(row)) matched[row.status as CountedJobStatus] += Number(row.n);
    }
    const cappedOf = (status: CountedJobStatus) =>
      (status === "DEAD_LETTERED" ? scanned.dead : scanned.unfinished) > cap;
    const byStatus = Object.fromEntries(
      COUNTED_JOB_STATUSES.map((status) => [
        status,
        { count: Math.min(matched[status], cap), capped: cappedOf(status) },
      ]),
    ) as Record<CountedJobStatus, CappedCount>;
    const byType = rows
      .filter((row) => counted(row) && Number(row.n) > 0)
      .map((row) => ({
        jobType: row.job_type as string,
        status: row.status as CountedJobStatus,
        count: Number(row.n),
        capped: cappedOf(row.status as CountedJobStatus),
      }))
      .sort((a, b) => a.jobType.localeCompare(b.jobType) || a.status.localeCompare(b.status));
    return { byStatus, byType };
  });
}

interface StatusCountRow {
  source: "unfinished" | "dead";
  status: string;
  job_type: string;
  n: number;
  scanned: number;
}

/** Outcomes counted per minute by `getJobThroughput`. */
export const THROUGHPUT_KINDS = ["succeeded", "failed", "deadLettered", "canceled"] as const;
export type ThroughputKind = (typeof THROUGHPUT_KINDS)[number];

export interface JobThroughput {
  /** The start of the window (a whole minute) and its end (now). */
  from: Date;
  until: Date;
  /** One bucket per minute, oldest first; counts before `countedFrom[kind]` are missing when capped. */
  minutes: ({ at: Date } & Record<ThroughputKind, number>)[];
  /** Per kind over the window, capped. */
  totals: Record<ThroughputKind, CappedCount>;
  /**
   * When a kind was capped, from when it was counted: for failures, dead letters and cancels the
   * oldest event read; for successes the creation time of the oldest job read (successes are
   * counted among the newest jobs).
   */
  countedFrom: Record<ThroughputKind, Date | null>;
}

/**
 * Succeeded, failed (every failed attempt, retried or not), dead-lettered and canceled jobs per
 * minute over the last `minutes` minutes (default 60) up to `now` (the database's clock when
 * omitted). Failures, dead letters and cancels are the
 * newest `cap + 1` events of each kind in the event log (a quarter of that for one organization,
 * whose events each need their job's row); successes are counted among the `cap / 2` newest jobs,
 * so when jobs wait long before they run, a busy hour's successes are undercounted (and say so).
 */
export async function getJobThroughput(
  executor: Executor,
  input: OverviewScope & { minutes?: number; now?: Date },
): Promise<JobThroughput> {
  const { cap, all } = boundsOf(input);
  const minutes = input.minutes ?? 60;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) {
    fail("job.invalid_pagination", { field: "minutes" });
  }
  checkNow(input.now);
  const eventBound = all ? cap : Math.max(1, Math.ceil(cap / 4));
  const bound: Record<ThroughputKind, number> = {
    // Each needs its job's row: half as many.
    succeeded: Math.max(1, Math.ceil(cap / 2)),
    failed: eventBound,
    deadLettered: eventBound,
    canceled: eventBound,
  };
  return translating(async () => {
    const rows = await queryRows<ThroughputRow>(
      executor,
      jobThroughput({
        minutes,
        bounds: { succeeded: bound.succeeded, events: eventBound },
        scope: input.scope,
        now: input.now,
      }),
    );
    const header = rows.find((row) => row.row_kind === "window")!;
    const from = toDate(header.window_from);
    const until = toDate(header.window_until);
    const zero = () => Object.fromEntries(THROUGHPUT_KINDS.map((k) => [k, 0])) as Record<ThroughputKind, number>;
    const buckets = Array.from({ length: minutes }, (_, i) => ({
      at: new Date(from.getTime() + i * 60_000),
      ...zero(),
    }));
    const totals = Object.fromEntries(THROUGHPUT_KINDS.map((k) => [k, { count: 0, capped: false }])) as Record<
      ThroughputKind,
      CappedCount
    >;
    const countedFrom = Object.fromEntries(THROUGHPUT_KINDS.map((k) => [k, null])) as Record<
      ThroughputKind,
      Date | null
    >;
    for (const row of rows) {
      const k = row.kind as ThroughputKind;
      if (row.row_kind === "total") {
        const capped = Number(row.scanned) > bound[k];
        totals[k] = { count: Math.min(Number(row.n), bound[k]), capped };
        if (capped) countedFrom[k] = toDateOrNull(row.oldest);
      } else if (row.row_kind === "minute") {
        const bucket = buckets[Math.round((toDate(row.at).getTime() - from.getTime()) / 60_000)];
        if (bucket !== undefined) bucket[k] += Number(row.n);
      }
    }
    return { from, until, minutes: buckets, totals, countedFrom };
  });
}

/** The pending job that has waited longest past its due time. */
export interface OldestDueJob {
  jobId: string;
  jobType: string;
  priority: number;
  nextRunAt: Date;
  /** How long it has been due at the read's clock (the database's unless `now` is given). */
  waitingMs: number;
}

/**
 * The pending job due at `now` (the database's clock when omitted) that has waited longest, or
 * null when none is due. Walks the claim
 * index's distinct priorities (a loose index scan) and takes each one's oldest due pending job
 * among its first `cap / 10` due unfinished jobs (`cap / 4` for one organization, whose jobs may
 * be few among them): null can then also mean that none of those was pending or the
 * organization's.
 */
export async function getOldestDueJob(
  executor: Executor,
  input: OverviewScope & { now?: Date },
): Promise<OldestDueJob | null> {
  const { cap, all } = boundsOf(input);
  checkNow(input.now);
  const perPriority = Math.max(1, Math.ceil(cap / (all ? 10 : 4)));
  return translating(async () => {
    const [row] = await queryRows<{
      id: string;
      job_type: string;
      priority: number;
      next_run_at: string | Date;
      waiting_ms: number;
    }>(executor, oldestDueJob({ perPriority, scope: input.scope, now: input.now }));
    if (row === undefined) return null;
    return {
      jobId: row.id,
      jobType: row.job_type,
      priority: Number(row.priority),
      nextRunAt: toDate(row.next_run_at),
      waitingMs: Math.max(0, Number(row.waiting_ms)),
    };
  });
}

/** A worker seen recently: what it holds now and when it last claimed. */
export interface RecentWorker {
  workerId: string;
  /** Jobs it holds a lease on now. */
  leased: number;
  /** Its newest claim among the jobs and attempts read (null when it only holds older leases). */
  lastClaimAt: Date | null;
  /** Its newest heartbeat on a job it holds. */
  lastHeartbeatAt: Date | null;
  /** Attempts it started among the newest jobs and attempts read. */
  recentAttempts: number;
}

/**
 * Workers that hold leases now (among the first `cap / 5` unfinished jobs, where the jobs being
 * run sit) or claimed one of the newest `cap / 5` jobs or logged attempts (2,000 of each by
 * default: seconds of a busy system, enough to see who is working), most recently active first,
 * at most `limit` (default 50).
 */
export async function listRecentWorkers(
  executor: Executor,
  input: OverviewScope & { limit?: number },
): Promise<RecentWorker[]> {
  const { cap } = boundsOf(input);
  const limit = input.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fail("job.invalid_pagination", { field: "limit" });
  const recent = Math.max(1, Math.ceil(cap / 5));
  return translating(async () => {
    const rows = await queryRows<{
      worker_id: string;
      leased: number;
      last_claim_at: string | Date | null;
      last_heartbeat_at: string | Date | null;
      attempts: number;
    }>(executor, recentWorkers({ recent, limit, scope: input.scope }));
    return rows.map((row) => ({
      workerId: row.worker_id,
      leased: Number(row.leased),
      lastClaimAt: toDateOrNull(row.last_claim_at),
      lastHeartbeatAt: toDateOrNull(row.last_heartbeat_at),
      recentAttempts: Number(row.attempts),
    }));
  });
}

/** Where the previous page of `listLeasedJobs` ended: the last job's claim time and id. */
export interface LeasedJobCursor {
  leasedAt: Date;
  id: string;
}

/**
 * The jobs leased now, newest claim first (`leased_at desc, id desc`), a page at a time: found
 * among the first `cap + 1` unfinished jobs in claim order, where the jobs being run sit (they
 * were claimed from the front). `capped` says the read stopped at the cap, so a leased job further
 * back may be missing.
 */
export async function listLeasedJobs(
  executor: Executor,
  input: OverviewScope & { limit: number; after?: LeasedJobCursor },
): Promise<Page<JobRecord, LeasedJobCursor> & { capped: boolean }> {
  const { cap } = boundsOf(input);
  if (!Number.isInteger(input.limit) || input.limit < 1 || input.limit > 1000) {
    fail("job.invalid_pagination", { field: "limit" });
  }
  const after = input.after;
  checkPage({
    after:
      after === undefined ? undefined : after === null ? (null as never) : { createdAt: after.leasedAt, id: after.id },
  });
  return translating(async () => {
    const rows = await queryRows<DbRow<typeof jobQueue> & { read_count: number }>(
      executor,
      leasedJobs({ cap, limit: input.limit, after, scope: input.scope }),
    );
    const capped = Number(rows[0]?.read_count ?? 0) > cap;
    const leased = rows.filter((row) => row.id !== null);
    const items = leased.slice(0, input.limit).map(jobFromRow);
    const last = leased[items.length - 1];
    return {
      items,
      next: leased.length > input.limit && last ? { leasedAt: toDate(last.leased_at), id: last.id } : null,
      capped,
    };
  });
}
