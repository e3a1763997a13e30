import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import type { RawRow } from "../jobs/record.ts";
import { queryRows } from "../query.ts";
import { toDate, toDateOrNull } from "../rows.ts";
import { jobAttempts, jobDeadLetters, jobEvents, jobQueue } from "../schema/index.ts";
import { fail, isUuid } from "../validate.ts";

/*
 * Reads for an operator's overview that stay fast on a table of millions of rows: each reads at
 * most `cap + 1` index entries per group, in the order of an index that holds only that group
 * (the claim index for pending jobs, the lease index, the dead letters by time, the events by
 * type and time), and takes the rows it needs by primary key. The scan is bounded before any
 * organization filter, so one organization's figures cost the same as everyone's: they are
 * exact while the whole group is under the cap and lower bounds (`capped`) beyond it. A page
 * shows a capped count as "10,000+". Sub-queries hand over id arrays (`= any(array(…))`) so no
 * statistics can turn the bounded read into a scan of the table.
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
  /** Only this organization's jobs; omitted means every organization (admin). */
  organizationId?: string;
  /** Rows read per group at most (default 10,000). */
  cap?: number;
}

function capOf(scope: OverviewScope): number {
  const cap = scope.cap ?? OVERVIEW_COUNT_CAP;
  if (!Number.isInteger(cap) || cap < 1 || cap > CAP_MAX) fail("job.invalid_pagination", { field: "cap" });
  if (scope.organizationId !== undefined && !isUuid(scope.organizationId)) {
    fail("job.invalid_pagination", { field: "organizationId" });
  }
  return cap;
}

/** The status's rows are read in this index's order: the claim index (pending), the lease index. */
const PENDING_ORDER = sql`priority desc nulls last, next_run_at, created_at, id`;

/**
 * How many jobs are pending, leased and dead-lettered, in total and per job type, reading at most
 * `cap + 1` rows per status (see the file comment for what a capped figure means).
 */
export async function countJobsByStatus(executor: Executor, scope: OverviewScope = {}): Promise<JobCountsByStatus> {
  const cap = capOf(scope);
  const org = scope.organizationId ?? null;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with read as (
        select 'PENDING' as status, j.job_type, j.organization_id from ${jobQueue} j
        where j.id = any(array(
          select id from ${jobQueue} where status = 'PENDING' order by ${PENDING_ORDER} limit ${cap + 1}))
        union all
        select 'LEASED', j.job_type, j.organization_id from ${jobQueue} j
        where j.id = any(array(
          select id from ${jobQueue} where status = 'LEASED' order by lease_expires_at limit ${cap + 1}))
        union all
        -- A dead-letter row outlives a requeue: it counts while its job is still dead-lettered.
        select 'DEAD_LETTERED', case when j.status = 'DEAD_LETTERED' then d.job_type end, d.organization_id
        from ${jobDeadLetters} d join ${jobQueue} j on j.id = d.job_id
        where d.job_id = any(array(select job_id from ${jobDeadLetters} order by failed_at desc limit ${cap + 1}))
      )
      select status, job_type,
        count(*) filter (where job_type is not null
          and (${org}::uuid is null or organization_id = ${org}::uuid))::int as n,
        count(*)::int as scanned
      from read group by status, job_type`,
    );
    const scanned: Record<LiveJobStatus, number> = { PENDING: 0, LEASED: 0, DEAD_LETTERED: 0 };
    const matched: Record<LiveJobStatus, number> = { PENDING: 0, LEASED: 0, DEAD_LETTERED: 0 };
    for (const row of rows) {
      scanned[row.status as LiveJobStatus] += Number(row.scanned);
      matched[row.status as LiveJobStatus] += Number(row.n);
    }
    const byStatus = Object.fromEntries(
      LIVE_JOB_STATUSES.map((status) => [
        status,
        { count: Math.min(matched[status], cap), capped: scanned[status] > cap },
      ]),
    ) as Record<LiveJobStatus, CappedCount>;
    const byType = rows
      .filter((row) => row.job_type !== null && Number(row.n) > 0)
      .map((row) => ({
        jobType: row.job_type as string,
        status: row.status as LiveJobStatus,
        count: Number(row.n),
        capped: byStatus[row.status as LiveJobStatus].capped,
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

const EVENT_OF: Record<ThroughputKind, string> = {
  succeeded: "SUCCEEDED",
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
  /** Events in the window per kind, capped. */
  totals: Record<ThroughputKind, CappedCount>;
  /** When a kind was capped, the time of the oldest event counted: minutes before it are incomplete. */
  countedFrom: Record<ThroughputKind, Date | null>;
}

/**
 * Succeeded, failed (every failed attempt, retried or not), dead-lettered and canceled jobs per
 * minute over the last `minutes` minutes (default 60), from the job events, reading the newest
 * `cap + 1` events of each kind (a quarter of that for one organization) through the events'
 * (type, time) index.
 */
export async function getJobThroughput(
  executor: Executor,
  scope: OverviewScope & { minutes?: number } = {},
): Promise<JobThroughput> {
  const cap = capOf(scope);
  const minutes = scope.minutes ?? 60;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) {
    fail("job.invalid_pagination", { field: "minutes" });
  }
  const org = scope.organizationId ?? null;
  // Everyone's events are counted from the index alone; one organization's need each event's job
  // row (a primary-key lookup), so a quarter as many are read.
  const bound = org === null ? cap : Math.max(1, Math.ceil(cap / 4));
  const window = sql`date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})`;
  // Everyone's: an index-only read. One organization's: the same rows, each job's organization by primary key.
  const kind = (k: ThroughputKind) =>
    org === null
      ? sql`select ${k}::text as kind, occurred_at, true as mine from ${jobEvents}
          where event_type = ${EVENT_OF[k]}::runledger.job_event_type and occurred_at >= ${window}
          order by occurred_at desc limit ${bound + 1}`
      : sql`select ${k}::text as kind, e.occurred_at,
            (select j.organization_id from ${jobQueue} j where j.id = e.job_id) = ${org}::uuid as mine
          from (select job_id, occurred_at from ${jobEvents}
            where event_type = ${EVENT_OF[k]}::runledger.job_event_type and occurred_at >= ${window}
            order by occurred_at desc limit ${bound + 1}) e`;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with read as (
        (${kind("succeeded")}) union all (${kind("failed")}) union all (${kind("deadLettered")}) union all (${kind("canceled")})
      ),
      per_kind as (
        select kind, count(*)::int as scanned, count(*) filter (where mine)::int as n, min(occurred_at) as oldest
        from read group by kind
      )
      select ${window} as window_from, now() as window_until, 'minute' as row_kind,
        date_trunc('minute', r.occurred_at) as at, r.kind, count(*)::int as n, 0 as scanned, null::timestamptz as oldest
      from read r where r.mine group by 4, 5
      union all
      select ${window}, now(), 'total', null, kind, n, scanned, oldest from per_kind
      union all
      select ${window}, now(), 'window', null, null, 0, 0, null`,
    );
    const header = rows.find((row) => row.row_kind === "window")!;
    const from = toDate(header.window_from);
    const until = toDate(header.window_until);
    const empty = () => Object.fromEntries(THROUGHPUT_KINDS.map((k) => [k, 0])) as Record<ThroughputKind, number>;
    const buckets = Array.from({ length: minutes }, (_, i) => ({
      at: new Date(from.getTime() + i * 60_000),
      ...empty(),
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
        const scanned = Number(row.scanned);
        totals[k] = { count: Math.min(Number(row.n), bound), capped: scanned > bound };
        if (scanned > bound) countedFrom[k] = toDateOrNull(row.oldest);
      } else if (row.row_kind === "minute") {
        const index = Math.round((toDate(row.at).getTime() - from.getTime()) / 60_000);
        const bucket = buckets[index];
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
 * index's distinct priorities (a loose index scan) and takes each one's oldest due job. For one
 * organization each priority's first `cap / 4` due jobs are searched (each needs its row): null
 * can then also mean that the organization has none among them.
 */
export async function getOldestDueJob(executor: Executor, scope: OverviewScope = {}): Promise<OldestDueJob | null> {
  const cap = capOf(scope);
  const org = scope.organizationId ?? null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`
      with recursive priorities as (
        (select priority from ${jobQueue} where status = 'PENDING' order by priority desc nulls last limit 1)
        union all
        select (select q.priority from ${jobQueue} q where q.status = 'PENDING' and q.priority < p.priority
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
            where status = 'PENDING' and priority = p.priority and next_run_at <= now()
            order by ${PENDING_ORDER} limit ${org === null ? 1 : Math.ceil(cap / 4) + 1}))
          and (${org}::uuid is null or j.organization_id = ${org}::uuid)
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
  /** Its newest claim among the attempts read (null when it only holds older leases). */
  lastClaimAt: Date | null;
  /** Its newest heartbeat on a job it holds. */
  lastHeartbeatAt: Date | null;
  /** Attempts it started among the newest attempts read. */
  recentAttempts: number;
}

/**
 * Workers that hold leases now (among the first `cap + 1` leases) or claimed among the newest
 * `cap / 5` attempts (2,000 by default: seconds of a busy system, enough to see who is working),
 * most recently active first, at most `limit` (default 50).
 */
export async function listRecentWorkers(
  executor: Executor,
  scope: OverviewScope & { limit?: number } = {},
): Promise<RecentWorker[]> {
  const cap = capOf(scope);
  const limit = scope.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fail("job.invalid_pagination", { field: "limit" });
  const org = scope.organizationId ?? null;
  const mine = (jobId: SQL) =>
    org === null ? sql`true` : sql`(select j.organization_id from ${jobQueue} j where j.id = ${jobId}) = ${org}::uuid`;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with holding as (
        select j.worker_id, count(*)::int as leased, max(j.last_heartbeat_at) as last_heartbeat_at
        from ${jobQueue} j
        where j.id = any(array(
          select id from ${jobQueue} where status = 'LEASED' order by lease_expires_at limit ${cap + 1}))
          and (${org}::uuid is null or j.organization_id = ${org}::uuid)
        group by j.worker_id
      ),
      recent as (
        select a.worker_id, count(*)::int as attempts, max(a.leased_at) as last_claim_at
        from (select worker_id, leased_at, job_id from ${jobAttempts}
          order by created_at desc limit ${Math.max(1, Math.ceil(cap / 5))}) a
        where ${mine(sql`a.job_id`)}
        group by a.worker_id
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
