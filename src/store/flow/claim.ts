import { RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { type Statement, textArrayLiteral } from "../query.ts";
import {
  type ClaimFairness,
  flowConfig,
  flowCountScopes,
  flowFairPools,
  flowFairWindowPools,
  flowLockScopes,
  flowPool,
  type PoolRow,
} from "../sql/flow.ts";
import { type FlowConfig, type FlowScopes, keyRule, readConfigRow, scopesOf } from "./scopes.ts";

export type { ClaimFairness };

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

/**
 * A claimer's memo, kept between its claims: whether flow control was configured at its last
 * claim, and where its fair claims' sweep through the queue has got to (see `flowFairWindowPools`).
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
  /** The clock of the due check and the rate windows; the database's when omitted. */
  now?: Date;
}

/**
 * The newest and sweep windows' least size: ranking ~2,600 rows (with the head) cost 88–117 ms on
 * 2 cores at load average 10, where ranking every one of 50,000 due jobs cost 377–684 ms.
 */
const FAIR_WINDOW = 1_000;

/** Where a sweep starts: before every job. */
const SWEEP_START = { createdAt: "-infinity", id: "00000000-0000-0000-0000-000000000000" };

/**
 * Claim under flow control (see above). `lease` is the claim's update for the admitted ids.
 * Updates `memo` with whether flow control is configured.
 */
export async function claimUnderFlowControl<Row extends Record<string, unknown>>(
  executor: Executor,
  input: FlowClaimInput,
  lease: Statement<Row>,
  memo?: FlowClaimMemo,
): Promise<Row[]> {
  const now = input.now;
  return executor.transaction(async (tx) => {
    const [configRow] = await flowConfig.run(tx, { now });
    if (configRow?.isolation_ok === false) throw new RunledgerError("flow.unsupported_isolation");
    const config = readConfigRow(configRow!);
    if (memo !== undefined) memo.active = config.active;
    const blocked = blockedScopes(config);
    const poolValues = {
      jobTypes: input.jobTypes,
      blockedTypes: textArrayLiteral(blocked.types),
      blockedKeys: textArrayLiteral(blocked.keys),
      blockedTypeKeyTypes: textArrayLiteral(blocked.typeKeys.map(([type]) => type)),
      blockedTypeKeyKeys: textArrayLiteral(blocked.typeKeys.map(([, key]) => key)),
      // A limited pool is larger than the claim, so jobs refused by a full scope leave room for others.
      limit: Math.min(config.limited ? input.limit * 2 : input.limit, 10_000),
      scan: Math.min(input.limit * 4 + 256, 100_000),
      now,
    };
    let rows: PoolRow[];
    if (input.fairness === undefined) rows = await flowPool.run(tx, poolValues);
    else if (memo === undefined) rows = await flowFairPools[input.fairness].run(tx, poolValues);
    else rows = await fairWindowClaim(tx, input.fairness, poolValues, memo);
    if (input.fairness !== undefined) rows.sort((a, b) => Number(a.ord) - Number(b.ord));
    const admitted = await admit(tx, config, rows, input.limit, now);
    if (admitted.ids.length === 0) return [];
    const leased = await lease.run(tx, {
      ids: textArrayLiteral(admitted.ids),
      slotScopes: textArrayLiteral(admitted.slots.map(([scope]) => scope)),
      slotJobs: textArrayLiteral(admitted.slots.map(([, id]) => id)),
      rateScopes: textArrayLiteral(admitted.starts.map(([scope]) => scope)),
      rateJobs: textArrayLiteral(admitted.starts.map(([, id]) => id)),
      rateMs: `{${admitted.starts.map(([, , ms]) => ms).join(",")}}`,
      now,
      workerId: input.workerId,
      leaseSeconds: input.leaseSeconds,
      markRunning: input.markRunning,
      prestart: input.prestart,
    });
    if (input.fairness === undefined) return leased;
    // A worker runs its claim in the order returned: a fair claim's order, so another tenant's
    // job is not queued behind a batch of the busy one's.
    const position = new Map(admitted.ids.map((id, i) => [id, i]));
    return leased.sort((a, b) => position.get(a.id as string)! - position.get(b.id as string)!);
  });
}

/** Rank the memo's windows (`flowFairWindowPools`) and move its sweep on, wrapping at the end. */
async function fairWindowClaim(
  tx: Executor,
  fairness: ClaimFairness,
  poolValues: Record<string, unknown>,
  memo: FlowClaimMemo,
): Promise<PoolRow[]> {
  const window = Math.min(Math.max(Number(poolValues.scan), FAIR_WINDOW), 100_000);
  const from = memo.fairSweep ?? SWEEP_START;
  const rows = await flowFairWindowPools[fairness].run(tx, {
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
  return rows.filter((row) => row.is_sweep !== true);
}

interface Admitted {
  ids: string[];
  slots: [scope: string, jobId: string][];
  starts: [scope: string, jobId: string, intervalMs: number][];
}

/** Lock the pool's scopes, count them, and admit jobs in pool order while their scopes have room. */
async function admit(
  tx: Executor,
  config: FlowConfig,
  rows: PoolRow[],
  limit: number,
  now: Date | undefined,
): Promise<Admitted> {
  const out: Admitted = { ids: [], slots: [], starts: [] };
  const scoped = rows.map((row) => ({ row, scopes: scopesOf(config, row.job_type, row.concurrency_key) }));
  const concurrency = new Map<string, number>();
  const rate = new Map<string, number>();
  for (const { scopes } of scoped) {
    for (const s of scopes.concurrency) concurrency.set(s.scope, s.limit);
    for (const s of scopes.rate) rate.set(s.scope, s.limit);
  }
  if (concurrency.size + rate.size > 0) {
    await flowLockScopes.run(tx, { scopes: textArrayLiteral([...concurrency.keys(), ...rate.keys()]) });
    const counts = await flowCountScopes.run(tx, {
      concurrencyScopes: textArrayLiteral([...concurrency.keys()]),
      rateScopes: textArrayLiteral([...rate.keys()]),
      now,
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
