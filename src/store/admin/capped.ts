import { type SQL, sql } from "drizzle-orm";
import { type OrganizationScope, scopedOrganization } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { type JobRecord, jobFromRow } from "../jobs/record.ts";
import { queryRows } from "../query.ts";
import type { DbRow, Page, RawRow } from "../rows.ts";
import { toDate, toDateOrNull } from "../rows.ts";
import { jobAttemptLog, jobDeadLetters, jobEventLog, jobQueue } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { checkPage, fail } from "../validate.ts";

/*
 * Reads for an operator's overview that stay fast on a table of millions of rows: each reads at
 * most `cap + 1` entries of one index, in that index's order, and takes the rows it needs by
 * primary key. The indexes:
 *   - the claim index holds exactly the unfinished jobs (pending and leased), in claim order;
 *   - the dead letters by failure time;
 *   - the event log by type and time (failures, dead letters, cancels: successes live on the job
 *     row, which no index orders by finish time);
 *   - the jobs by creation time (successes and recent workers are read among the newest jobs);
 *   - the attempt log by time (attempts that left their job row).
 * One organization's figures filter the same bounded read (or read its own creation-time index),
 * so they cost what everyone's do, and are exact while the group is under the cap and lower
 * bounds (`capped`) beyond it. A page shows a capped count as "10,000+". Sub-queries hand over id
 * arrays (`= any(array(…))`) so that no statistics can turn a bounded read into a table scan.
 */

/** Default number of rows a capped count reads per group. */
export const OVERVIEW_COUNT_CAP = 10_000;
const CAP_MAX = 1_000_000;

/** A count that stopped at its cap: `count` is exact when `capped` is false, a lower bound otherwise. */
export interface CappedCount {
  count: number;
  capped: boolean;
}

/** Statuses a job can be waiting or stuck in, counted over their own indexes. */
export const LIVE_JOB_STATUSES = ["PENDING", "LEASED", "DEAD_LETTERED"] as const;
export type LiveJobStatus = (typeof LIVE_JOB_STATUSES)[number];

export interface JobCountsByStatus {
  /** Jobs now in each status, capped. */
  byStatus: Record<LiveJobStatus, CappedCount>;
  /**
   * Per job type, counted among the rows read for its status: exact when that status was not
   * capped, a lower bound (`capped`) when it was.
   */
  byType: { jobType: string; status: LiveJobStatus; count: number; capped: boolean }[];
}

export interface OverviewScope {
  /** Whose jobs: one organization's, or `ALL_ORGANIZATIONS`. Required. */
  scope: OrganizationScope;
  /** Rows read per group at most (default 10,000). */
  cap?: number;
}

/** The checked cap, and the scope's condition on an `organization_id` column (`scope.required` when missing). */
function boundsOf(input: OverviewScope): { cap: number; all: boolean; where: (column: SQL) => SQL } {
  const all = scopedOrganization(input?.scope) === null;
  const cap = input.cap ?? OVERVIEW_COUNT_CAP;
  if (!Number.isInteger(cap) || cap < 1 || cap > CAP_MAX) fail("job.invalid_pagination", { field: "cap" });
  return { cap, all, where: (column) => scopeCondition(column, input.scope) };
}

/** The claim index's order (its priority column is DESC NULLS LAST). */
const CLAIM_ORDER = sql`priority desc nulls last, next_run_at, created_at, id`;

/** Ids of the first `limit` unfinished (pending or leased) jobs in claim order: an index-only read. */
const unfinishedIds = (limit: number) =>
  sql`array(select id from ${jobQueue} where finished_at is null order by ${CLAIM_ORDER} limit ${limit})`;

/** Ids of the newest `limit` jobs of the scope: an index-only read (by creation, or the organization's index). */
const newestIds = (limit: number, where: (column: SQL) => SQL) =>
  sql`array(select id from ${jobQueue} where ${where(sql`organization_id`)}
    order by created_at desc, id desc limit ${limit})`;

/** Whether the job of `jobId` is in the scope: one primary-key probe (none for every organization). */
const belongs = (jobId: SQL, bounds: { all: boolean; where: (column: SQL) => SQL }) =>
  bounds.all
    ? sql`true`
    : sql`coalesce((select ${bounds.where(sql`j.organization_id`)} from ${jobQueue} j where j.id = ${jobId}), false)`;

/**
 * How many jobs are pending, leased and dead-lettered, in total and per job type. Pending and
 * leased jobs are counted among the first `cap + 1` unfinished jobs in claim order (leased ones
 * come first: they were claimed in that order), dead letters among the `cap + 1` latest.
 */
export async function countJobsByStatus(executor: Executor, input: OverviewScope): Promise<JobCountsByStatus> {
  const { cap, where } = boundsOf(input);
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with read as (
        select 'unfinished' as source, j.status::text as status, j.job_type, j.organization_id
        from ${jobQueue} j where j.id = any(${unfinishedIds(cap + 1)})
        union all
        -- A dead-letter row outlives a requeue: it counts while its job is still dead-lettered.
        select 'dead', j.status::text, d.job_type, d.organization_id
        from ${jobDeadLetters} d join ${jobQueue} j on j.id = d.job_id
        where d.job_id = any(array(select job_id from ${jobDeadLetters} order by failed_at desc limit ${cap + 1}))
      )
      select source, status, job_type,
        count(*) filter (where ${where(sql`organization_id`)})::int as n,
        count(*)::int as scanned
      from read group by source, status, job_type`,
    );
    const scanned = { unfinished: 0, dead: 0 };
    const matched: Record<LiveJobStatus, number> = { PENDING: 0, LEASED: 0, DEAD_LETTERED: 0 };
    // A job that finished between the index read and the row read is read but not counted.
    const counted = (row: RawRow) =>
      row.source === "dead" ? row.status === "DEAD_LETTERED" : row.status === "PENDING" || row.status === "LEASED";
    for (const row of rows) {
      scanned[row.source as "unfinished" | "dead"] += Number(row.scanned);
      if (counted(row)) matched[row.status as LiveJobStatus] += Number(row.n);
    }
    const cappedOf = (status: LiveJobStatus) => (status === "DEAD_LETTERED" ? scanned.dead : scanned.unfinished) > cap;
    const byStatus = Object.fromEntries(
      LIVE_JOB_STATUSES.map((status) => [status, { count: Math.min(matched[status], cap), capped: cappedOf(status) }]),
    ) as Record<LiveJobStatus, CappedCount>;
    const byType = rows
      .filter((row) => counted(row) && Number(row.n) > 0)
      .map((row) => ({
        jobType: row.job_type as string,
        status: row.status as LiveJobStatus,
        count: Number(row.n),
        capped: cappedOf(row.status as LiveJobStatus),
      }))
      .sort((a, b) => a.jobType.localeCompare(b.jobType) || a.status.localeCompare(b.status));
    return { byStatus, byType };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Outcomes counted per minute by `getJobThroughput`. */
export const THROUGHPUT_KINDS = ["succeeded", "failed", "deadLettered", "canceled"] as const;
export type ThroughputKind = (typeof THROUGHPUT_KINDS)[number];

const EVENT_OF: Record<Exclude<ThroughputKind, "succeeded">, string> = {
  failed: "FAILED",
  deadLettered: "DEAD_LETTERED",
  canceled: "CANCELED",
};

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
 * minute over the last `minutes` minutes (default 60). Failures, dead letters and cancels are the
 * newest `cap + 1` events of each kind in the event log (a quarter of that for one organization,
 * whose events each need their job's row); successes are counted among the `cap / 2` newest jobs,
 * so when jobs wait long before they run, a busy hour's successes are undercounted (and say so).
 */
export async function getJobThroughput(
  executor: Executor,
  input: OverviewScope & { minutes?: number },
): Promise<JobThroughput> {
  const bounds = boundsOf(input);
  const { cap } = bounds;
  const minutes = input.minutes ?? 60;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) {
    fail("job.invalid_pagination", { field: "minutes" });
  }
  const eventBound = bounds.all ? cap : Math.max(1, Math.ceil(cap / 4));
  const bound: Record<ThroughputKind, number> = {
    // Each needs its job's row: half as many.
    succeeded: Math.max(1, Math.ceil(cap / 2)),
    failed: eventBound,
    deadLettered: eventBound,
    canceled: eventBound,
  };
  const window = sql`date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})`;
  const events = (k: Exclude<ThroughputKind, "succeeded">) => sql`
    select ${k}::text as kind, e.occurred_at as at, e.occurred_at as read_at, ${belongs(sql`e.job_id`, bounds)} as mine
    from (select job_id, occurred_at from ${jobEventLog}
      where event_type = ${EVENT_OF[k]}::runledger.job_event_type and occurred_at >= ${window}
      order by occurred_at desc limit ${eventBound + 1}) e`;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with read as (
        select 'succeeded' as kind, case when j.status = 'SUCCEEDED' and j.finished_at >= ${window}
            then j.finished_at end as at, j.created_at as read_at, true as mine
        from ${jobQueue} j where j.id = any(${newestIds(bound.succeeded + 1, bounds.where)})
        union all (${events("failed")}) union all (${events("deadLettered")}) union all (${events("canceled")})
      ),
      per_kind as (
        select kind, count(*)::int as scanned, count(*) filter (where mine and at is not null)::int as n,
          min(read_at) as oldest
        from read group by kind
      )
      select ${window} as window_from, now() as window_until, 'minute' as row_kind,
        date_trunc('minute', r.at) as at, r.kind, count(*)::int as n, 0 as scanned, null::timestamptz as oldest
      from read r where r.mine and r.at is not null group by 4, 5
      union all
      select ${window}, now(), 'total', null, kind, n, scanned, oldest from per_kind
      union all
      select ${window}, now(), 'window', null, null, 0, 0, null`,
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
  } catch (error) {
    throw toQueryError(error);
  }
}

/** The pending job that has waited longest past its due time. */
export interface OldestDueJob {
  jobId: string;
  jobType: string;
  priority: number;
  nextRunAt: Date;
  /** How long it has been due, by the database clock. */
  waitingMs: number;
}

/**
 * The due pending job that has waited longest, or null when none is due. Walks the claim
 * index's distinct priorities (a loose index scan) and takes each one's oldest due pending job
 * among its first `cap / 10` due unfinished jobs (`cap / 4` for one organization, whose jobs may
 * be few among them): null can then also mean that none of those was pending or the
 * organization's.
 */
export async function getOldestDueJob(executor: Executor, input: OverviewScope): Promise<OldestDueJob | null> {
  const { cap, all, where } = boundsOf(input);
  // The index read names no status (so it stays an index-only read whatever the statistics say);
  // the jobs being run come first in claim order and are passed over on their rows.
  const perPriority = Math.max(1, Math.ceil(cap / (all ? 10 : 4)));
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`
      with recursive priorities as (
        (select priority from ${jobQueue} where finished_at is null order by priority desc nulls last limit 1)
        union all
        select (select q.priority from ${jobQueue} q where q.finished_at is null and q.priority < p.priority
            order by q.priority desc nulls last limit 1)
        from priorities p where p.priority is not null
      )
      select o.id, o.job_type, o.priority, o.next_run_at,
        (extract(epoch from now() - o.next_run_at) * 1000)::float8 as waiting_ms
      from priorities p
      cross join lateral (
        select j.id, j.job_type, j.priority, j.next_run_at, j.created_at from ${jobQueue} j
        where j.id = any(array(
            select id from ${jobQueue}
            where finished_at is null and priority = p.priority and next_run_at <= now()
            order by ${CLAIM_ORDER} limit ${perPriority}))
          and j.status = 'PENDING' and ${where(sql`j.organization_id`)}
        order by j.next_run_at, j.created_at, j.id limit 1
      ) o
      where p.priority is not null
      order by o.next_run_at, o.priority desc
      limit 1`,
    );
    if (row === undefined) return null;
    return {
      jobId: row.id,
      jobType: row.job_type,
      priority: Number(row.priority),
      nextRunAt: toDate(row.next_run_at),
      waitingMs: Math.max(0, Number(row.waiting_ms)),
    };
  } catch (error) {
    throw toQueryError(error);
  }
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
  const bounds = boundsOf(input);
  const { cap, where } = bounds;
  const limit = input.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fail("job.invalid_pagination", { field: "limit" });
  const recent = Math.max(1, Math.ceil(cap / 5));
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with holding as (
        select j.worker_id, count(*)::int as leased, max(j.last_heartbeat_at) as last_heartbeat_at
        from ${jobQueue} j
        where j.id = any(${unfinishedIds(recent)}) and j.status = 'LEASED'
          and ${where(sql`j.organization_id`)}
        group by j.worker_id
      ),
      claims as (
        select j.worker_id, j.leased_at from ${jobQueue} j
        where j.id = any(${newestIds(recent, where)}) and j.leased_at is not null and j.worker_id is not null
        union all
        select a.worker_id, a.leased_at
        from (select worker_id, leased_at, job_id from ${jobAttemptLog} order by created_at desc limit ${recent}) a
        where ${belongs(sql`a.job_id`, bounds)}
      ),
      recent as (
        select worker_id, count(*)::int as attempts, max(leased_at) as last_claim_at from claims group by worker_id
      )
      select coalesce(h.worker_id, r.worker_id) as worker_id, coalesce(h.leased, 0) as leased,
        r.last_claim_at, h.last_heartbeat_at, coalesce(r.attempts, 0) as attempts
      from holding h full join recent r on r.worker_id = h.worker_id
      order by greatest(r.last_claim_at, h.last_heartbeat_at) desc nulls last, 1
      limit ${limit}`,
    );
    return rows.map((row) => ({
      workerId: row.worker_id,
      leased: Number(row.leased),
      lastClaimAt: toDateOrNull(row.last_claim_at),
      lastHeartbeatAt: toDateOrNull(row.last_heartbeat_at),
      recentAttempts: Number(row.attempts),
    }));
  } catch (error) {
    throw toQueryError(error);
  }
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
  const { cap, where } = boundsOf(input);
  if (!Number.isInteger(input.limit) || input.limit < 1 || input.limit > 1000) {
    fail("job.invalid_pagination", { field: "limit" });
  }
  const after = input.after;
  checkPage({
    after:
      after === undefined ? undefined : after === null ? (null as never) : { createdAt: after.leasedAt, id: after.id },
  });
  try {
    const rows = await queryRows<DbRow<typeof jobQueue> & { read_count: number }>(
      executor,
      sql`
      with read as (select ${unfinishedIds(cap + 1)} as ids)
      select j.*, cardinality(read.ids) as read_count from read
      left join ${jobQueue} j on j.id = any(read.ids) and j.status = 'LEASED'
        and ${where(sql`j.organization_id`)}
        ${
          after === undefined
            ? sql``
            : // The cursor job's own claim time: a Date holds milliseconds, the column microseconds.
              sql`and (j.leased_at, j.id) < (coalesce((select c.leased_at from ${jobQueue} c
                where c.id = ${after.id}::uuid), ${after.leasedAt.toISOString()}::timestamptz), ${after.id}::uuid)`
        }
      order by j.leased_at desc nulls last, j.id desc
      limit ${input.limit + 1}`,
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
  } catch (error) {
    throw toQueryError(error);
  }
}
