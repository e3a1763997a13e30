import { type SQL, sql } from "drizzle-orm";
import { RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { type Statement, statement } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { flowKeyLimits, flowRateStarts, flowSlots, jobDefinitions, jobQueue } from "../schema/index.ts";
import { type FlowConfig, type FlowScopes, keyRule, readConfigRow, scopesOf } from "./scopes.ts";

/*
 * The flow-controlled claim: what a claim becomes once any job type is paused or limited, any key
 * limit exists, or the claimer asks for fairness. One transaction:
 *
 * 1. read the flow configuration and, as a hint, which scopes look full (no lock yet);
 * 2. lock a pool of due jobs (FOR UPDATE SKIP LOCKED) in claim order (or round-robin across
 *    organizations or keys, for fairness), leaving out paused types and the scopes that looked
 *    full, so one saturated key does not block the jobs queued behind it;
 * 3. take a transaction-scoped advisory lock on every concurrency or rate scope of the pool, in
 *    one global order (so claimers never deadlock);
 * 4. count, in a new snapshot that sees every claim committed under those locks, each scope's
 *    running jobs (slots whose job is LEASED) and its starts in the rate window, and admit pool
 *    jobs in order while every scope they belong to has room;
 * 5. lease the admitted jobs with the claim's own update, recording their slots and starts.
 *
 * Jobs left out stay PENDING with their attempt untouched; the row locks go at commit. A pool
 * with no limited scope skips 3 and 4.
 */

/** Share claims across organizations or concurrency keys instead of strict claim order. */
export type ClaimFairness = "organization" | "concurrencyKey";

/**
 * A claimer's memo, kept between its claims: whether flow control was configured at its last
 * claim, and where its fair claims' sweep through the queue has got to (see `fairWindowPool`).
 */
export interface FlowClaimMemo {
  active: boolean;
  /** The last job the sweep looked at (its `created_at` as text, for microseconds, and id). */
  fairSweep?: { createdAt: string; id: string };
}

export interface FlowClaimInput {
  workerId: string;
  leaseSeconds: number;
  limit: number;
  /** A text array literal (see `textArrayLiteral`), or null for every type. */
  jobTypes: string | null;
  markRunning: boolean;
  prestart: boolean;
  fairness?: ClaimFairness;
}

const readConfig = statement<RawRow>(
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
      select scope, count(*) as n from ${flowRateStarts} where expires_at > now() group by scope) r) as started
`,
);

const dueRows = sql`finished_at is null and status = 'PENDING' and next_run_at <= now()
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
const pool = statement<RawRow>(
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
const fairPool = (name: string, column: SQL) => statement<RawRow>(name, lockRanked(jobQueue, due, column));

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

const fairPools: Record<ClaimFairness, Statement<RawRow>> = {
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
  statement<RawRow>(
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

const fairWindowPools: Record<ClaimFairness, Statement<RawRow>> = {
  organization: fairWindowPool("runledger_flow_pool_fair_window_organization", sql`organization_id`),
  concurrencyKey: fairWindowPool("runledger_flow_pool_fair_window_key", sql`concurrency_key`),
};

/**
 * The newest and sweep windows' least size: ranking ~2,600 rows (with the head) cost 88–117 ms on
 * 2 cores at load average 10, where ranking every one of 50,000 due jobs cost 377–684 ms.
 */
const FAIR_WINDOW = 1_000;

/** Where a sweep starts: before every job. */
const SWEEP_START = { createdAt: "-infinity", id: "00000000-0000-0000-0000-000000000000" };

/** One global order (the lock keys'), so two claimers never wait on each other's locks in a cycle. */
const lockScopes = statement<RawRow>(
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
const countScopes = statement<RawRow>(
  "runledger_flow_count_scopes",
  sql`
  with stale_slots as (
    delete from ${flowSlots} s
    where s.scope = any(${sql.placeholder("concurrencyScopes")}::text[])
      and not exists (select 1 from ${jobQueue} j where j.id = s.job_id and j.status = 'LEASED')
  ),
  expired_starts as (
    delete from ${flowRateStarts}
    where scope = any(${sql.placeholder("rateScopes")}::text[]) and expires_at <= now()
  )
  select 'c' as kind, s.scope, count(*)::int as n from ${flowSlots} s join ${jobQueue} j on j.id = s.job_id
  where s.scope = any(${sql.placeholder("concurrencyScopes")}::text[]) and j.status = 'LEASED'
  group by s.scope
  union all
  select 'r', scope, count(*)::int from ${flowRateStarts}
  where scope = any(${sql.placeholder("rateScopes")}::text[]) and expires_at > now()
  group by scope
`,
);

interface PoolRow {
  id: string;
  job_type: string;
  concurrency_key: string | null;
  ord?: string | number;
}

/**
 * Claim under flow control (see above). `lease` is the claim's update for the admitted ids.
 * Updates `memo` with whether flow control is configured.
 */
export async function claimUnderFlowControl(
  executor: Executor,
  input: FlowClaimInput,
  lease: Statement<RawRow>,
  memo?: FlowClaimMemo,
): Promise<RawRow[]> {
  return executor.transaction(async (tx) => {
    const [configRow] = await readConfig.run(tx, {});
    if (configRow?.isolation_ok === false) throw new RunledgerError("flow.unsupported_isolation");
    const config = readConfigRow(configRow!);
    if (memo !== undefined) memo.active = config.active;
    const blocked = blockedScopes(config);
    const poolValues = {
      jobTypes: input.jobTypes,
      blockedTypes: toArray(blocked.types),
      blockedKeys: toArray(blocked.keys),
      blockedTypeKeyTypes: toArray(blocked.typeKeys.map(([type]) => type)),
      blockedTypeKeyKeys: toArray(blocked.typeKeys.map(([, key]) => key)),
      // A limited pool is larger than the claim, so jobs refused by a full scope leave room for others.
      limit: Math.min(config.limited ? input.limit * 2 : input.limit, 10_000),
      scan: Math.min(input.limit * 4 + 256, 100_000),
    };
    let rows: PoolRow[];
    if (input.fairness === undefined) rows = (await pool.run(tx, poolValues)) as PoolRow[];
    else if (memo === undefined) rows = (await fairPools[input.fairness].run(tx, poolValues)) as PoolRow[];
    else rows = await fairWindowClaim(tx, input.fairness, poolValues, memo);
    if (input.fairness !== undefined) rows.sort((a, b) => Number(a.ord) - Number(b.ord));
    const admitted = await admit(tx, config, rows, input.limit);
    if (admitted.ids.length === 0) return [];
    const leased = await lease.run(tx, {
      ids: toArray(admitted.ids),
      slotScopes: toArray(admitted.slots.map(([scope]) => scope)),
      slotJobs: toArray(admitted.slots.map(([, id]) => id)),
      rateScopes: toArray(admitted.starts.map(([scope]) => scope)),
      rateJobs: toArray(admitted.starts.map(([, id]) => id)),
      rateMs: `{${admitted.starts.map(([, , ms]) => ms).join(",")}}`,
      workerId: input.workerId,
      leaseSeconds: input.leaseSeconds,
      markRunning: input.markRunning,
      prestart: input.prestart,
    });
    if (input.fairness === undefined) return leased;
    // A worker runs its claim in the order returned: a fair claim's order, so another tenant's
    // job is not queued behind a batch of the busy one's.
    const position = new Map(admitted.ids.map((id, i) => [id, i]));
    return leased.sort((a, b) => position.get(a.id)! - position.get(b.id)!);
  });
}

/** Rank the memo's windows (`fairWindowPool`) and move its sweep on, wrapping at the end. */
async function fairWindowClaim(
  tx: Executor,
  fairness: ClaimFairness,
  poolValues: Record<string, unknown>,
  memo: FlowClaimMemo,
): Promise<PoolRow[]> {
  const window = Math.min(Math.max(Number(poolValues.scan), FAIR_WINDOW), 100_000);
  const from = memo.fairSweep ?? SWEEP_START;
  const rows = await fairWindowPools[fairness].run(tx, {
    ...poolValues,
    window,
    sweepCreatedAt: from.createdAt,
    sweepId: from.id,
  });
  const end = rows.find((row) => row.is_sweep === true);
  memo.fairSweep =
    end === undefined || Number(end.sweep_rows) < window || end.sweep_id == null
      ? undefined
      : { createdAt: end.sweep_created_at, id: end.sweep_id };
  return rows.filter((row) => row.is_sweep !== true) as PoolRow[];
}

interface Admitted {
  ids: string[];
  slots: [scope: string, jobId: string][];
  starts: [scope: string, jobId: string, intervalMs: number][];
}

/** Lock the pool's scopes, count them, and admit jobs in pool order while their scopes have room. */
async function admit(tx: Executor, config: FlowConfig, rows: PoolRow[], limit: number): Promise<Admitted> {
  const out: Admitted = { ids: [], slots: [], starts: [] };
  const scoped = rows.map((row) => ({ row, scopes: scopesOf(config, row.job_type, row.concurrency_key) }));
  const concurrency = new Map<string, number>();
  const rate = new Map<string, number>();
  for (const { scopes } of scoped) {
    for (const s of scopes.concurrency) concurrency.set(s.scope, s.limit);
    for (const s of scopes.rate) rate.set(s.scope, s.limit);
  }
  if (concurrency.size + rate.size > 0) {
    await lockScopes.run(tx, { scopes: toArray([...concurrency.keys(), ...rate.keys()]) });
    const counts = await countScopes.run(tx, {
      concurrencyScopes: toArray([...concurrency.keys()]),
      rateScopes: toArray([...rate.keys()]),
    });
    for (const { kind, scope, n } of counts) {
      const room = kind === "c" ? concurrency : rate;
      room.set(scope, (room.get(scope) ?? 0) - Number(n));
    }
  }
  for (const { row, scopes } of scoped) {
    if (out.ids.length >= limit) break;
    if (!hasRoom(scopes, concurrency, rate)) continue;
    out.ids.push(row.id);
    for (const s of scopes.concurrency) {
      concurrency.set(s.scope, concurrency.get(s.scope)! - 1);
      out.slots.push([s.scope, row.id]);
    }
    for (const s of scopes.rate) {
      rate.set(s.scope, rate.get(s.scope)! - 1);
      out.starts.push([s.scope, row.id, s.intervalMs]);
    }
  }
  return out;
}

function hasRoom(scopes: FlowScopes, concurrency: Map<string, number>, rate: Map<string, number>): boolean {
  return (
    scopes.concurrency.every((s) => concurrency.get(s.scope)! > 0) && scopes.rate.every((s) => rate.get(s.scope)! > 0)
  );
}

/** Types, keys and (type, key) pairs to leave out of the pool: paused, or full at the last look. */
function blockedScopes(config: FlowConfig): { types: string[]; keys: string[]; typeKeys: [string, string][] } {
  const out = { types: [...config.paused], keys: [] as string[], typeKeys: [] as [string, string][] };
  const full = (scope: string, used: number, kind: "concurrency" | "rate") => {
    const parsed = JSON.parse(scope) as string[];
    const [tag, a, b] = parsed;
    if (tag === "t") {
      const d = config.definitions.get(a!);
      const limit = kind === "concurrency" ? d?.maxConcurrency : d?.rate?.limit;
      if (limit != null && used >= limit) out.types.push(a!);
    } else if (tag === "tk") {
      const limit = config.definitions.get(a!)?.maxConcurrencyPerKey;
      if (kind === "concurrency" && limit != null && used >= limit) out.typeKeys.push([a!, b!]);
    } else if (tag === "k") {
      const rule = keyRule(config, a!);
      const limit = kind === "concurrency" ? rule?.maxConcurrency : rule?.rate?.limit;
      if (limit != null && used >= limit) out.keys.push(a!);
    }
  };
  for (const [scope, n] of config.running) full(scope, n, "concurrency");
  for (const [scope, n] of config.started) full(scope, n, "rate");
  return out;
}

/** A PostgreSQL array literal of texts (see `columnParams` for why literals are built here). */
function toArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}
