import { sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import type { RawRow } from "../jobs/record.ts";
import { queryRows } from "../query.ts";
import { toDate, toDateOrNull } from "../rows.ts";
import { jobAttempts, jobDeadLetters, jobEvents, jobQueue } from "../schema/index.ts";
import { fail, isUuid } from "../validate.ts";

/*
 * Reads for an operator's overview that stay fast on a table of millions of rows: every count
 * reads at most `cap` rows per group through an index, so its cost does not grow with the table.
 * A count that reached its cap says so (`capped`), and a page shows "10,000+".
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

const jobOrg = (alias: string, organizationId: string | undefined) =>
  organizationId === undefined ? sql`` : sql`and ${sql.raw(alias)}.organization_id = ${organizationId}`;

/**
 * How many jobs are pending, leased and dead-lettered, in total and per job type, reading at most
 * `cap + 1` rows per status. Each status is read in the order of an index that holds only that
 * status (the claim index, the lease-expiry index, the dead letters by failure time), so the
 * planner never scans the table for it.
 */
export async function countJobsByStatus(executor: Executor, scope: OverviewScope = {}): Promise<JobCountsByStatus> {
  const cap = capOf(scope);
  const org = scope.organizationId;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with pending as (
        select j.job_type from ${jobQueue} j where j.status = 'PENDING' ${jobOrg("j", org)}
        order by j.priority desc, j.next_run_at, j.created_at, j.id limit ${cap + 1}
      ),
      leased as (
        select j.job_type from ${jobQueue} j where j.status = 'LEASED' ${jobOrg("j", org)}
        order by j.lease_expires_at limit ${cap + 1}
      ),
      dead as (
        -- The dead-letter row outlives a requeue: only jobs still dead-lettered count.
        select d.job_type from ${jobDeadLetters} d join ${jobQueue} j on j.id = d.job_id and j.status = 'DEAD_LETTERED'
        where true ${jobOrg("d", org)}
        order by d.failed_at desc limit ${cap + 1}
      )
      select 'PENDING' as status, job_type, count(*)::int as n from pending group by job_type
      union all select 'LEASED', job_type, count(*)::int from leased group by job_type
      union all select 'DEAD_LETTERED', job_type, count(*)::int from dead group by job_type`,
    );
    const read: Record<LiveJobStatus, number> = { PENDING: 0, LEASED: 0, DEAD_LETTERED: 0 };
    for (const row of rows) read[row.status as LiveJobStatus] += Number(row.n);
    const byStatus = Object.fromEntries(
      LIVE_JOB_STATUSES.map((status) => [status, { count: Math.min(read[status], cap), capped: read[status] > cap }]),
    ) as Record<LiveJobStatus, CappedCount>;
    const byType = rows
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
 * minute over the last `minutes` minutes (default 60), from the job events, reading at most
 * `cap + 1` newest events of each kind through the events' (type, time) index.
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
  const org = scope.organizationId;
  const window = sql`date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})`;
  const kind = (k: ThroughputKind) => sql`
    select ${k}::text as kind, e.occurred_at from ${jobEvents} e
    ${org === undefined ? sql`` : sql`join ${jobQueue} j on j.id = e.job_id and j.organization_id = ${org}`}
    where e.event_type = ${EVENT_OF[k]}::runledger.job_event_type and e.occurred_at >= ${window}
    order by e.occurred_at desc limit ${cap + 1}`;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with counted as (
        (${kind("succeeded")}) union all (${kind("failed")}) union all (${kind("deadLettered")}) union all (${kind("canceled")})
      ),
      per_kind as (
        select kind, count(*)::int as total, min(occurred_at) as oldest from counted group by kind
      )
      select ${window} as window_from, now() as window_until, 'minute' as row_kind,
        date_trunc('minute', c.occurred_at) as at, c.kind, count(*)::int as n, null::timestamptz as oldest
      from counted c group by 4, 5
      union all
      select ${window}, now(), 'total', null, kind, total, oldest from per_kind
      union all
      select ${window}, now(), 'window', null, null, 0, null`,
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
        const n = Number(row.n);
        totals[k] = { count: Math.min(n, cap), capped: n > cap };
        if (n > cap) countedFrom[k] = toDateOrNull(row.oldest);
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
 * index's distinct priorities (a loose index scan) and takes each one's oldest due job, so it
 * reads a few index entries per priority instead of every pending row.
 */
export async function getOldestDueJob(
  executor: Executor,
  scope: Pick<OverviewScope, "organizationId"> = {},
): Promise<OldestDueJob | null> {
  capOf(scope);
  const org = scope.organizationId;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`
      with recursive priorities as (
        (select j.priority from ${jobQueue} j where j.status = 'PENDING' ${jobOrg("j", org)}
          order by j.priority desc limit 1)
        union all
        select (select j.priority from ${jobQueue} j where j.status = 'PENDING' ${jobOrg("j", org)}
            and j.priority < p.priority order by j.priority desc limit 1)
        from priorities p where p.priority is not null
      )
      select o.id, o.job_type, o.priority, o.next_run_at,
        (extract(epoch from now() - o.next_run_at) * 1000)::float8 as waiting_ms
      from priorities p
      cross join lateral (
        select j.id, j.job_type, j.priority, j.next_run_at from ${jobQueue} j
        where j.status = 'PENDING' and j.priority = p.priority and j.next_run_at <= now() ${jobOrg("j", org)}
        order by j.priority desc, j.next_run_at, j.created_at, j.id limit 1
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
  /** Attempts it started among the newest `cap` attempts. */
  recentAttempts: number;
}

/**
 * Workers that hold leases now or claimed among the newest `cap` attempts (default 10,000),
 * most recently active first, at most `limit` (default 50).
 */
export async function listRecentWorkers(
  executor: Executor,
  scope: OverviewScope & { limit?: number } = {},
): Promise<RecentWorker[]> {
  const cap = capOf(scope);
  const limit = scope.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fail("job.invalid_pagination", { field: "limit" });
  const org = scope.organizationId;
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`
      with holding as (
        select j.worker_id, count(*)::int as leased, max(j.last_heartbeat_at) as last_heartbeat_at
        from (select j.worker_id, j.last_heartbeat_at from ${jobQueue} j where j.status = 'LEASED' ${jobOrg("j", org)}
          order by j.lease_expires_at limit ${cap + 1}) j
        group by j.worker_id
      ),
      recent as (
        select a.worker_id, count(*)::int as attempts, max(a.leased_at) as last_claim_at
        from (select a.worker_id, a.leased_at from ${jobAttempts} a
          ${org === undefined ? sql`` : sql`join ${jobQueue} j on j.id = a.job_id and j.organization_id = ${org}`}
          order by a.created_at desc limit ${cap}) a
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
