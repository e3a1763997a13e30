import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { JOBS_CHANNEL } from "../notify.ts";
import { clockNow, type Statement, statement } from "../query.ts";
import type { DbRow } from "../rows.ts";
import { flowKeyLimits, flowRateStarts, flowSlots, jobDefinitions, jobQueue } from "../schema/index.ts";
import { escapeLike } from "../validate.ts";

/*
 * Flow control's statements (src/store/flow/): the flow-controlled claim's (hot: measured, and
 * kept as measured), the running jobs a new limit adopts, and the operators' settings and reads.
 * The due check and the rate windows read the statement clock (`clockNow`), as the direct claim's
 * due check does (sql/jobs/claim.ts: `coalesce($n, now())` stays the claim index's condition), so
 * a test claims as of a given `now`; the lease itself is written at the server's `now()`.
 */

/** Share claims across organizations or concurrency keys instead of strict claim order. */
export type ClaimFairness = "organization" | "concurrencyKey";

/**
 * Whether any flow control is configured: a paused or limited job type (a probe of a partial
 * index that is empty without one) or a key limit. Uncorrelated, so a statement evaluates it once.
 */
export const flowConfigured = sql`(exists (select 1 from ${jobDefinitions}
    where paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null
      or rate_limit is not null)
    or exists (select 1 from ${flowKeyLimits}))`;

/**
 * The flow-controlled claim's candidates: the rows it admitted (already locked by it), plus the
 * slots and rate-window starts they take, written by the statement that leases them.
 */
export const flowLeaseCandidates = sql`candidates as (
    select unnest(${sql.placeholder("ids")}::uuid[]) as id
  ),
  slots_taken as (
    insert into ${flowSlots} (scope, job_id)
    select * from unnest(${sql.placeholder("slotScopes")}::text[], ${sql.placeholder("slotJobs")}::uuid[])
    on conflict do nothing
  ),
  starts_taken as (
    insert into ${flowRateStarts} (scope, job_id, started_at, expires_at)
    select r.scope, r.job_id, ${clockNow}, ${clockNow} + make_interval(secs => r.ms / 1000.0)
    from unnest(${sql.placeholder("rateScopes")}::text[], ${sql.placeholder("rateJobs")}::uuid[],
      ${sql.placeholder("rateMs")}::int[]) as r(scope, job_id, ms)
  )`;

/** The flow configuration row the claim reads first (`readConfigRow` makes it a `FlowConfig`). */
export interface FlowConfigRow {
  isolation_ok: boolean;
  /** `[job_type, paused, max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms]` each. */
  definitions: unknown[][];
  /** `[pattern, max_concurrency, rate_limit, rate_interval_ms]` each. */
  key_limits: unknown[][];
  /** `[scope, running jobs]` each. */
  running: [string, unknown][];
  /** `[scope, starts in the window]` each. */
  started: [string, unknown][];
}

/** A pool candidate; `ord` is its place in a fair claim's round-robin. */
export interface PoolRow {
  id: string;
  job_type: string;
  concurrency_key: string | null;
  ord?: string | number;
}

/** A fair window pool's row: a candidate, or (`is_sweep`) where the sweep ended. */
export interface WindowPoolRow extends PoolRow {
  is_sweep: boolean;
  sweep_created_at: string;
  sweep_id: string | null;
  sweep_rows: number;
}

/**
 * What the flow claim works with: the flow configuration, the running jobs per concurrency scope
 * and the starts per rate scope still in their window (hints: counted again under the scopes' locks).
 */
export const flowConfig = statement<FlowConfigRow>(
  "runledger_flow_config",
  sql`
  select
    current_setting('transaction_isolation') in ('read committed', 'read uncommitted') as isolation_ok,
    (select coalesce(jsonb_agg(jsonb_build_array(job_type, paused_at is not null, max_concurrency,
        max_concurrency_per_key, rate_limit, rate_interval_ms)), '[]')
      from ${jobDefinitions}
      where paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null
        or rate_limit is not null) as definitions,
    (select coalesce(jsonb_agg(jsonb_build_array(pattern, max_concurrency, rate_limit, rate_interval_ms)), '[]')
      from ${flowKeyLimits}) as key_limits,
    (select coalesce(jsonb_agg(jsonb_build_array(scope, n)), '[]') from (
      select s.scope, count(*) as n from ${flowSlots} s join ${jobQueue} j on j.id = s.job_id
      where j.status = 'LEASED' group by s.scope) c) as running,
    (select coalesce(jsonb_agg(jsonb_build_array(scope, n)), '[]') from (
      select scope, count(*) as n from ${flowRateStarts} where expires_at > ${clockNow} group by scope) r) as started
`,
);

const dueRows = sql`finished_at is null and status = 'PENDING' and next_run_at <= ${clockNow}
    and (${sql.placeholder("jobTypes")}::text[] is null or job_type = any(${sql.placeholder("jobTypes")}::text[]))
    and job_type <> all(${sql.placeholder("blockedTypes")}::text[])`;

const notBlocked = sql`(concurrency_key is null or (concurrency_key <> all(${sql.placeholder("blockedKeys")}::text[])
      and not exists (select 1 from unnest(${sql.placeholder("blockedTypeKeyTypes")}::text[],
        ${sql.placeholder("blockedTypeKeyKeys")}::text[]) as b(bt, bk)
        where b.bt = job_type and b.bk = concurrency_key)))`;

const due = sql`${dueRows} and ${notBlocked}`;

/*
 * The pool looks at most `scan` due jobs in claim order (a multiple of the pool): when every key
 * near the head of the queue is full, a claim costs a bounded scan instead of a walk through the
 * whole backlog (which, claimed once per finished job, made a 50,000-job backlog over 100 keys run
 * at ~300 jobs/s). Jobs of free keys further back wait until the head drains.
 */
export const flowPool = statement<PoolRow>(
  "runledger_flow_pool",
  sql`
  select id, job_type, concurrency_key from ${jobQueue}
  where id = any(array(
    select id from (
      select id, job_type, concurrency_key, priority, next_run_at, created_at from ${jobQueue}
      where ${dueRows}
      order by priority desc nulls last, next_run_at, created_at, id
      limit ${sql.placeholder("scan")}
    ) head
    where ${notBlocked}
    order by priority desc nulls last, next_run_at, created_at, id
    limit ${sql.placeholder("limit")}
  ))
    and finished_at is null and status = 'PENDING'
  order by priority desc nulls last, next_run_at, created_at, id
  for update skip locked
`,
);

/*
 * Fair pools rank each organization's (or key's) due jobs and take the first of every one before
 * the second of any. This one ranks every due job, so its cost grows with the backlog (~100 ms
 * for 50,000, twice that under load); it serves fair claims without a memo (`claimJobs` callers).
 */
const fairPool = (name: string, column: SQL) => statement<PoolRow>(name, lockRanked(jobQueue, due, column));

/**
 * Rank `source`'s rows matching `filter` round-robin across `column`'s values (the first of every
 * value before the second of any), keep the first `limit`, and lock those still PENDING.
 */
function lockRanked(source: SQL | typeof jobQueue, filter: SQL, column: SQL): SQL {
  return sql`select j.id, j.job_type, j.concurrency_key, f.ord from ${jobQueue} j
  join (
    select id, row_number() over (order by rn, priority desc nulls last, next_run_at, created_at, id) as ord
    from (
      select id, priority, next_run_at, created_at,
        row_number() over (partition by ${column} order by priority desc nulls last, next_run_at, created_at, id) as rn
      from ${source}
      where ${filter}
    ) ranked
    where rn <= ${sql.placeholder("limit")}
    order by ord
    limit ${sql.placeholder("limit")}
  ) f on f.id = j.id
  where j.finished_at is null and j.status = 'PENDING'
  for update of j skip locked`;
}

/** The fair pools without a memo, by what they share the claim across. */
export const flowFairPools: Record<ClaimFairness, Statement<PoolRow>> = {
  organization: fairPool("runledger_flow_pool_fair_organization", sql`organization_id`),
  concurrencyKey: fairPool("runledger_flow_pool_fair_key", sql`concurrency_key`),
};

const WINDOW_COLUMNS = sql`id, job_type, organization_id, concurrency_key, priority, next_run_at, created_at,
  finished_at, status`;

/*
 * A worker's fair claims rank windows of the queue instead, so a claim costs the same whatever the
 * backlog, and a fair claim (one every 100 ms per worker) cannot itself become the wait it exists
 * to remove. The pool ranks the due jobs among:
 * - the head: the first `scan` due jobs in claim order (the claim index), as a strict claim sees;
 * - the newest `window` jobs (idx_job_queue_created, backwards): a job enqueued since the last
 *   fair claim is here unless more than `window` jobs were enqueued after it in between;
 * - the sweep: the next `window` jobs by creation after the memo's cursor (forwards), which wraps
 *   at the end, so every due job is ranked at least once per pass through the table: a job of a
 *   small tenant stuck mid-queue (a retry, a delayed job, or one pushed out of the newest window by
 *   a flood) waits at most (table rows / `window`) fair claims.
 * The last row reports where the sweep ended (`sweep_*`, with `is_sweep` set); it is no candidate.
 * Measured on the bench's scenario (c) at 50,000 queued: README "Flow control".
 */
const fairWindowPool = (name: string, column: SQL) =>
  statement<WindowPoolRow>(
    name,
    sql`
  with sweep as materialized (
    select ${WINDOW_COLUMNS} from ${jobQueue}
    where (created_at, id) > (${sql.placeholder("sweepCreatedAt")}::timestamptz, ${sql.placeholder("sweepId")}::uuid)
    order by created_at, id
    limit ${sql.placeholder("window")}
  ),
  candidates as (
    (select ${WINDOW_COLUMNS} from ${jobQueue}
      where ${dueRows}
      order by priority desc nulls last, next_run_at, created_at, id
      limit ${sql.placeholder("scan")})
    union
    (select * from (select ${WINDOW_COLUMNS} from ${jobQueue}
      order by created_at desc, id desc
      limit ${sql.placeholder("window")}) newest
      where ${dueRows})
    union
    (select * from sweep where ${dueRows})
  ),
  pool as (
    ${lockRanked(sql`candidates`, notBlocked, column)}
  )
  select id, job_type, concurrency_key, ord, false as is_sweep, null::text as sweep_created_at,
    null::uuid as sweep_id, null::int as sweep_rows
  from pool
  union all
  select null, null, null, null, true,
    (select created_at::text from sweep order by created_at desc, id desc limit 1),
    (select id from sweep order by created_at desc, id desc limit 1),
    (select count(*)::int from sweep)
`,
  );

/** The fair window pools (a worker's memo holds their sweep), by what they share the claim across. */
export const flowFairWindowPools: Record<ClaimFairness, Statement<WindowPoolRow>> = {
  organization: fairWindowPool("runledger_flow_pool_fair_window_organization", sql`organization_id`),
  concurrencyKey: fairWindowPool("runledger_flow_pool_fair_window_key", sql`concurrency_key`),
};

/** One global order (the lock keys'), so two claimers never wait on each other's locks in a cycle. */
export const flowLockScopes = statement<{ locked: number }>(
  "runledger_flow_lock_scopes",
  sql`
  select count(pg_advisory_xact_lock(k)) as locked from (
    select distinct hashtextextended('runledger.flow:' || s, 0) as k
    from unnest(${sql.placeholder("scopes")}::text[]) as s
    order by 1
  ) keys
`,
);

/** Exact counts under the locks; slots of jobs no longer running and expired starts are dropped. */
export const flowCountScopes = statement<{ kind: "c" | "r"; scope: string; n: number }>(
  "runledger_flow_count_scopes",
  sql`
  with stale_slots as (
    delete from ${flowSlots} s
    where s.scope = any(${sql.placeholder("concurrencyScopes")}::text[])
      and not exists (select 1 from ${jobQueue} j where j.id = s.job_id and j.status = 'LEASED')
  ),
  expired_starts as (
    delete from ${flowRateStarts}
    where scope = any(${sql.placeholder("rateScopes")}::text[]) and expires_at <= ${clockNow}
  )
  select 'c' as kind, s.scope, count(*)::int as n from ${flowSlots} s join ${jobQueue} j on j.id = s.job_id
  where s.scope = any(${sql.placeholder("concurrencyScopes")}::text[]) and j.status = 'LEASED'
  group by s.scope
  union all
  select 'r', scope, count(*)::int from ${flowRateStarts}
  where scope = any(${sql.placeholder("rateScopes")}::text[]) and expires_at > ${clockNow}
  group by scope
`,
);

/*
 * A new concurrency limit counts the jobs already running in its scope: they get a slot, as if
 * they had been claimed under it. (Scopes are spelled as `JSON.stringify` spells them in
 * flow/scopes.ts.) Without this, a limit set while jobs run would admit `limit` more.
 */

/** Give running jobs matching `match` a slot in each of `scopes` (a list of nullable text expressions). */
async function adoptRunning(tx: Executor, match: SQL, scopes: SQL): Promise<void> {
  await tx.execute(sql`insert into ${flowSlots} (scope, job_id)
    select s.scope, j.id from ${jobQueue} j
    left join ${jobDefinitions} d on d.job_type = j.job_type
    cross join lateral unnest(array[${scopes}]) as s(scope)
    where j.finished_at is null and j.status = 'LEASED' and ${match} and s.scope is not null
    on conflict do nothing`);
}

/** `adoptRunning` for the limits the definitions of `jobTypes` hold now (per type and per key). */
export async function adoptRunningOfTypes(tx: Executor, jobTypes: readonly string[]): Promise<void> {
  if (jobTypes.length === 0) return;
  await adoptRunning(
    tx,
    sql`j.job_type = any(${sql.param([...jobTypes])}::text[])`,
    sql`case when d.max_concurrency is not null then '["t",' || to_json(j.job_type)::text || ']' end,
        case when d.max_concurrency_per_key is not null and j.concurrency_key is not null
          then '["tk",' || to_json(j.job_type)::text || ',' || to_json(j.concurrency_key)::text || ']' end`,
  );
}

/** `adoptRunning` for a key limit on `pattern`: an exact key, or a prefix ending in `*`. */
export function adoptRunningOfKeyPattern(tx: Executor, pattern: string): Promise<void> {
  const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : null;
  return adoptRunning(
    tx,
    prefix === null ? sql`j.concurrency_key = ${pattern}` : sql`j.concurrency_key like ${`${escapeLike(prefix)}%`}`,
    sql`'["k",' || to_json(j.concurrency_key)::text || ']'`,
  );
}

/* Operators' settings (flow/admin.ts): each change notifies the jobs channel at commit. */

const notify = sql`(select pg_notify(${JOBS_CHANNEL}, ''))`;

/**
 * Change a definition's flow settings, and notify; no row for an unknown type. `paused`: true
 * pauses (keeping an earlier pause's time), false resumes, null keeps; each limit is written only
 * when its `set…` flag is true (a null value removes it).
 */
export const definitionFlowUpdate = statement<{ job_type: string }>(
  "runledger_definition_flow_update",
  sql`with updated as (
      update ${jobDefinitions} set
        paused_at = case ${sql.placeholder("paused")}::boolean when true then coalesce(paused_at, now())
          when false then null else paused_at end,
        max_concurrency = case when ${sql.placeholder("setMax")}::boolean
          then ${sql.placeholder("max")}::int else max_concurrency end,
        max_concurrency_per_key = case when ${sql.placeholder("setPerKey")}::boolean
          then ${sql.placeholder("perKey")}::int else max_concurrency_per_key end,
        rate_limit = case when ${sql.placeholder("setRate")}::boolean
          then ${sql.placeholder("rateLimit")}::int else rate_limit end,
        rate_interval_ms = case when ${sql.placeholder("setRate")}::boolean
          then ${sql.placeholder("rateIntervalMs")}::int else rate_interval_ms end
      where job_type = ${sql.placeholder("jobType")}
      returning job_type
    )
    select job_type, ${notify} as notified from updated`,
);

/** Create or replace a key limit, and notify. */
export const keyLimitUpsert = statement<DbRow<typeof flowKeyLimits>>(
  "runledger_key_limit_upsert",
  sql`insert into ${flowKeyLimits} as k (pattern, max_concurrency, rate_limit, rate_interval_ms)
    values (${sql.placeholder("pattern")}, ${sql.placeholder("max")}::int, ${sql.placeholder("rateLimit")}::int,
      ${sql.placeholder("rateIntervalMs")}::int)
    on conflict (pattern) do update set max_concurrency = excluded.max_concurrency,
      rate_limit = excluded.rate_limit, rate_interval_ms = excluded.rate_interval_ms, updated_at = now()
    returning k.*, ${notify} as notified`,
);

/** Remove a key limit, and notify; no row when there was none. */
export const keyLimitDelete = statement<DbRow<typeof flowKeyLimits>>(
  "runledger_key_limit_delete",
  sql`with removed as (delete from ${flowKeyLimits} where pattern = ${sql.placeholder("pattern")} returning *)
    select removed.*, ${notify} as notified from removed`,
);

/** The job types flow control applies to: paused, or with a limit. */
export const flowControlledJobTypes = statement<{ job_type: string }>(
  "runledger_flow_controlled_job_types",
  sql`select job_type from ${jobDefinitions}
    where paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null
      or rate_limit is not null
    order by job_type`,
);

/** Every key limit, by pattern. */
export const keyLimitList = statement<DbRow<typeof flowKeyLimits>>(
  "runledger_key_limit_list",
  sql`select * from ${flowKeyLimits} order by pattern`,
);

/**
 * The scopes in use, busiest first: running jobs (slots whose job is LEASED) and starts still in
 * their rate window at `clockNow`.
 */
export const flowScopeUsage = statement<{ scope: string; running: number; starts: number }>(
  "runledger_flow_scope_usage",
  sql`select scope, sum(running)::int as running, sum(starts)::int as starts from (
      select s.scope, count(*) as running, 0 as starts from ${flowSlots} s
      join ${jobQueue} j on j.id = s.job_id where j.status = 'LEASED' group by s.scope
      union all
      select scope, 0, count(*) from ${flowRateStarts} where expires_at > ${clockNow} group by scope
    ) u group by scope order by 2 desc, 3 desc, 1 limit ${sql.placeholder("limit")}`,
);
