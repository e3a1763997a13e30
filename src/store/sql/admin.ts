import { type SQL, sql } from "drizzle-orm";
import { type OrganizationScope, scopedOrganization } from "../../core/index.ts";
import { clockAt, statement } from "../query.ts";
import type { DbRow } from "../rows.ts";
import {
  jobAttemptLog,
  jobDeadLetters,
  jobDefinitions,
  jobEventLog,
  jobQueue,
  jobSchedules,
  workflowRuns,
  workflowSteps,
} from "../schema/index.ts";
import { scopeCondition } from "./scope.ts";

/*
 * The operator's reads (src/store/admin/): the overview's capped counts, the doctor's health
 * checks and the search. Overview reads stay fast on a table of millions of rows: each reads at
 * most `cap + 1` entries of one index, in that index's order, and takes the rows it needs by
 * primary key. The indexes:
 *   - the claim index holds exactly the unfinished jobs (pending and leased), in claim order;
 *   - the dead letters by failure time;
 *   - the event log by type and time (failures, dead letters, cancels: successes live on the job
 *     row, which no index orders by finish time);
 *   - the jobs by creation time (successes and recent workers are read among the newest jobs);
 *   - the attempt log by time (attempts that left their job row).
 * One organization's figures filter the same bounded read (or read its own creation-time index).
 * Sub-queries hand over id arrays (`= any(array(…))`) so that no statistics can turn a bounded
 * read into a table scan. `scope` has been checked (`scopedOrganization`) before these are built.
 */

/** The claim index's order (its priority column is DESC NULLS LAST). */
const CLAIM_ORDER = sql`priority desc nulls last, next_run_at, created_at, id`;

/** Ids of the first `limit` unfinished (pending or leased) jobs in claim order: an index-only read. */
const unfinishedIds = (limit: number) =>
  sql`array(select id from ${jobQueue} where finished_at is null order by ${CLAIM_ORDER} limit ${limit})`;

/** Ids of the newest `limit` jobs of the scope: an index-only read (by creation, or the organization's index). */
const newestIds = (limit: number, scope: OrganizationScope) =>
  sql`array(select id from ${jobQueue} where ${scopeCondition(sql`organization_id`, scope)}
    order by created_at desc, id desc limit ${limit})`;

/** Whether the job of `jobId` is in the scope: one primary-key probe (none for every organization). */
const belongs = (jobId: SQL, scope: OrganizationScope) =>
  scopedOrganization(scope) === null
    ? sql`true`
    : sql`coalesce((select ${scopeCondition(sql`j.organization_id`, scope)} from ${jobQueue} j where j.id = ${jobId}), false)`;

/**
 * Pending and leased jobs among the first `cap + 1` unfinished ones in claim order, dead letters
 * among the `cap + 1` latest: per source, status and job type, how many were read (`scanned`) and
 * how many are the scope's (`n`).
 */
export function jobStatusCounts(cap: number, scope: OrganizationScope): SQL {
  return sql`
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
      count(*) filter (where ${scopeCondition(sql`organization_id`, scope)})::int as n,
      count(*)::int as scanned
    from read group by source, status, job_type`;
}

/** A row of `jobThroughput`: a minute's count of a kind, a kind's total, or the window itself. */
export interface ThroughputRow {
  window_from: string | Date;
  window_until: string | Date;
  row_kind: "minute" | "total" | "window";
  at: string | Date | null;
  kind: string | null;
  n: number;
  scanned: number;
  oldest: string | Date | null;
}

/**
 * Outcomes per minute over the `minutes` whole minutes up to `now` (the database's clock when
 * omitted): successes among the `bounds.succeeded + 1` newest jobs (each needs its row), failures,
 * dead letters and cancels among the newest `bounds.events + 1` events of their type.
 */
export function jobThroughput(input: {
  minutes: number;
  bounds: { succeeded: number; events: number };
  scope: OrganizationScope;
  now: Date | undefined;
}): SQL {
  const clock = clockAt(input.now);
  const window = sql`date_trunc('minute', ${clock}) - make_interval(mins => ${input.minutes - 1})`;
  const events = (kind: string, eventType: string) => sql`
    select ${kind}::text as kind, e.occurred_at as at, e.occurred_at as read_at, ${belongs(sql`e.job_id`, input.scope)} as mine
    from (select job_id, occurred_at from ${jobEventLog}
      where event_type = ${eventType}::runledger.job_event_type and occurred_at >= ${window}
      order by occurred_at desc limit ${input.bounds.events + 1}) e`;
  return sql`
    with read as (
      select 'succeeded' as kind, case when j.status = 'SUCCEEDED' and j.finished_at >= ${window}
          then j.finished_at end as at, j.created_at as read_at, true as mine
      from ${jobQueue} j where j.id = any(${newestIds(input.bounds.succeeded + 1, input.scope)})
      union all (${events("failed", "FAILED")}) union all (${events("deadLettered", "DEAD_LETTERED")})
      union all (${events("canceled", "CANCELED")})
    ),
    per_kind as (
      select kind, count(*)::int as scanned, count(*) filter (where mine and at is not null)::int as n,
        min(read_at) as oldest
      from read group by kind
    )
    select ${window} as window_from, ${clock} as window_until, 'minute' as row_kind,
      date_trunc('minute', r.at) as at, r.kind, count(*)::int as n, 0 as scanned, null::timestamptz as oldest
    from read r where r.mine and r.at is not null group by 4, 5
    union all
    select ${window}, ${clock}, 'total', null, kind, n, scanned, oldest from per_kind
    union all
    select ${window}, ${clock}, 'window', null, null, 0, 0, null`;
}

/**
 * The pending job due at `now` (the database's clock when omitted) that has waited longest. Walks
 * the claim index's distinct priorities (a loose index scan) and takes each one's oldest due
 * pending job of the scope among its first `perPriority` due unfinished jobs. The index read names
 * no status (so it stays an index-only read whatever the statistics say); the jobs being run come
 * first in claim order and are passed over on their rows.
 */
export function oldestDueJob(input: { perPriority: number; scope: OrganizationScope; now: Date | undefined }): SQL {
  const clock = clockAt(input.now);
  return sql`
    with recursive priorities as (
      (select priority from ${jobQueue} where finished_at is null order by priority desc nulls last limit 1)
      union all
      select (select q.priority from ${jobQueue} q where q.finished_at is null and q.priority < p.priority
          order by q.priority desc nulls last limit 1)
      from priorities p where p.priority is not null
    )
    select o.id, o.job_type, o.priority, o.next_run_at,
      (extract(epoch from ${clock} - o.next_run_at) * 1000)::float8 as waiting_ms
    from priorities p
    cross join lateral (
      select j.id, j.job_type, j.priority, j.next_run_at, j.created_at from ${jobQueue} j
      where j.id = any(array(
          select id from ${jobQueue}
          where finished_at is null and priority = p.priority and next_run_at <= ${clock}
          order by ${CLAIM_ORDER} limit ${input.perPriority}))
        and j.status = 'PENDING' and ${scopeCondition(sql`j.organization_id`, input.scope)}
      order by j.next_run_at, j.created_at, j.id limit 1
    ) o
    where p.priority is not null
    order by o.next_run_at, o.priority desc
    limit 1`;
}

/**
 * Workers holding leases among the first `recent` unfinished jobs, or that claimed one of the
 * newest `recent` jobs or logged attempts, most recently active first, at most `limit`.
 */
export function recentWorkers(input: { recent: number; limit: number; scope: OrganizationScope }): SQL {
  return sql`
    with holding as (
      select j.worker_id, count(*)::int as leased, max(j.last_heartbeat_at) as last_heartbeat_at
      from ${jobQueue} j
      where j.id = any(${unfinishedIds(input.recent)}) and j.status = 'LEASED'
        and ${scopeCondition(sql`j.organization_id`, input.scope)}
      group by j.worker_id
    ),
    claims as (
      select j.worker_id, j.leased_at from ${jobQueue} j
      where j.id = any(${newestIds(input.recent, input.scope)}) and j.leased_at is not null and j.worker_id is not null
      union all
      select a.worker_id, a.leased_at
      from (select worker_id, leased_at, job_id from ${jobAttemptLog} order by created_at desc limit ${input.recent}) a
      where ${belongs(sql`a.job_id`, input.scope)}
    ),
    recent as (
      select worker_id, count(*)::int as attempts, max(leased_at) as last_claim_at from claims group by worker_id
    )
    select coalesce(h.worker_id, r.worker_id) as worker_id, coalesce(h.leased, 0) as leased,
      r.last_claim_at, h.last_heartbeat_at, coalesce(r.attempts, 0) as attempts
    from holding h full join recent r on r.worker_id = h.worker_id
    order by greatest(r.last_claim_at, h.last_heartbeat_at) desc nulls last, 1
    limit ${input.limit}`;
}

/**
 * The scope's leased jobs among the first `cap + 1` unfinished ones, newest claim first, after the
 * cursor; `read_count` (on every row, and on the one row of nulls when none matched) says how
 * many were read.
 */
export function leasedJobs(input: {
  cap: number;
  limit: number;
  after: { leasedAt: Date; id: string } | undefined;
  scope: OrganizationScope;
}): SQL {
  const after = input.after;
  return sql`
    with read as (select ${unfinishedIds(input.cap + 1)} as ids)
    select j.*, cardinality(read.ids) as read_count from read
    left join ${jobQueue} j on j.id = any(read.ids) and j.status = 'LEASED'
      and ${scopeCondition(sql`j.organization_id`, input.scope)}
      ${
        after === undefined
          ? sql``
          : // The cursor job's own claim time: a Date holds milliseconds, the column microseconds.
            sql`and (j.leased_at, j.id) < (coalesce((select c.leased_at from ${jobQueue} c
              where c.id = ${after.id}::uuid), ${after.leasedAt.toISOString()}::timestamptz), ${after.id}::uuid)`
      }
    order by j.leased_at desc nulls last, j.id desc
    limit ${input.limit + 1}`;
}

/*
 * Health checks for `runledger doctor`: read-only, bounded, and about the system rather than one
 * tenant's data.
 */

export const serverInfo = statement<{ version: string; version_num: number; database: string }>(
  "runledger_server_info",
  sql`select current_setting('server_version') as version,
    current_setting('server_version_num')::int as version_num, current_database() as database`,
);

/** Disabled definitions with their unfinished jobs (counted up to 10,000) and active schedules. */
export const disabledDefinitionsUse = statement<{ job_type: string; unfinished: number; schedules: number }>(
  "runledger_disabled_definitions_use",
  sql`select d.job_type,
      (select count(*) from (select 1 from ${jobQueue} j
        where j.job_type = d.job_type and j.finished_at is null limit 10000) u)::int as unfinished,
      (select count(*) from ${jobSchedules} s where s.job_type = d.job_type and s.is_active)::int as schedules
    from ${jobDefinitions} d
    where not d.is_enabled
    order by d.job_type`,
);

/**
 * Leased jobs whose lease expired more than `graceSeconds` before `clockNow` (counted up to
 * 10,000), and the oldest such expiry; reads the unfinished jobs only (the claim index's rows).
 */
export function stuckLeases(graceSeconds: number, now: Date | undefined): SQL {
  return sql`select count(*)::int as n, min(lease_expires_at) as oldest from (
      select lease_expires_at from ${jobQueue}
      where finished_at is null and status = 'LEASED'
        and lease_expires_at < ${clockAt(now)} - make_interval(secs => ${graceSeconds})
      limit 10000) s`;
}

/**
 * A claim's first step without its lock: the first runnable job in claim order, through the
 * claim index. `explain (analyze, buffers)` of it counts the pages a claim reads before it finds
 * work, which grows with the finished jobs' index entries that no vacuum has removed yet.
 */
export const claimScanProbe = sql`explain (analyze, buffers, format json)
  select id from ${jobQueue}
  where finished_at is null and status = 'PENDING'
  order by ${CLAIM_ORDER}
  limit 1`;

/** Keeps `claimScanProbe` on the claim index for the rest of its transaction. */
export const claimScanPath = sql`select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
  set_config('enable_sort', 'off', true)`;

/** When `job_queue` was last vacuumed (by hand or by autovacuum), and whether autovacuum may. */
export const queueVacuum = statement<{ vacuumed_at: string | Date | null; autovacuum: boolean }>(
  "runledger_queue_vacuum",
  sql`select greatest(s.last_vacuum, s.last_autovacuum) as vacuumed_at,
      current_setting('autovacuum')::boolean
        and coalesce((select option_value::boolean from pg_options_to_table(c.reloptions)
          where option_name = 'autovacuum_enabled'), true) as autovacuum
    from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
    where c.oid = 'runledger.job_queue'::regclass`,
);

/*
 * Search and the dead-letter list. `inScope(alias, scope)` is `and` the scope's condition on the
 * alias's `organization_id`.
 */

const inScope = (alias: string, scope: OrganizationScope): SQL =>
  sql`and ${scopeCondition(sql.raw(`${alias}.organization_id`), scope)}`;

/**
 * Jobs whose id is `id`, or whose idempotency key is `key` (newest first, at most `limit`): a key
 * is looked up per job type through the idempotency indexes, so the search reads index entries,
 * not the table. A job may come back twice (id and key); the caller drops the second.
 */
export function jobsByIdOrKey(input: {
  id: string | undefined;
  key: string;
  limit: number;
  scope: OrganizationScope;
}): SQL {
  const { scope } = input;
  return sql`
    select j.* from ${jobQueue} j where j.id = ${input.id ?? null}::uuid ${inScope("j", scope)}
    union all
    select k.* from (
      select j.* from ${jobQueue} j
      where j.job_type = any(array(select job_type from ${jobDefinitions})) and j.idempotency_key = ${input.key}
        and j.organization_id is null ${inScope("j", scope)}
      union all
      select j.* from ${jobQueue} j
      where j.job_type = any(array(select job_type from ${jobDefinitions})) and j.idempotency_key = ${input.key}
        and j.organization_id is not null ${inScope("j", scope)}
      order by created_at desc, id desc limit ${input.limit}
    ) k`;
}

/** The workflow run whose id is `id`, in the scope. */
export function runById(id: string | undefined, scope: OrganizationScope): SQL {
  return sql`select r.* from ${workflowRuns} r where r.id = ${id ?? null}::uuid ${inScope("r", scope)}`;
}

export type DeadLetterRow = DbRow<typeof jobDeadLetters> & { job_created_at: string | Date };

/**
 * Dead letters of jobs still dead-lettered, most recent failure first (the failure-time index),
 * optionally of one job type, after the cursor; one row more than `limit` says there is a next page.
 */
export function deadLetters(input: {
  scope: OrganizationScope;
  jobType: string | undefined;
  limit: number;
  after: { failedAt: Date; jobId: string } | undefined;
}): SQL {
  const after = input.after;
  return sql`select d.*, j.created_at as job_created_at
    from ${jobDeadLetters} d join ${jobQueue} j on j.id = d.job_id and j.status = 'DEAD_LETTERED'
    where true ${inScope("d", input.scope)}
      ${input.jobType === undefined ? sql`` : sql`and d.job_type = ${input.jobType}`}
      ${
        after === undefined
          ? sql``
          : // The row's own time, not the cursor's: a Date holds milliseconds, the column microseconds.
            sql`and (d.failed_at, d.job_id) < (coalesce((select c.failed_at from ${jobDeadLetters} c
              where c.job_id = ${after.jobId}::uuid), ${after.failedAt.toISOString()}::timestamptz), ${after.jobId}::uuid)`
      }
    order by d.failed_at desc, d.job_id desc
    limit ${input.limit + 1}`;
}

/** The workflow step the job `jobId` backs, if the job is in the scope. */
export function jobWorkflowStep(jobId: string, scope: OrganizationScope): SQL {
  return sql`select s.workflow_run_id, s.step_key from ${jobQueue} j join ${workflowSteps} s on s.id = j.workflow_step_id
    where j.id = ${jobId} ${inScope("j", scope)}`;
}
