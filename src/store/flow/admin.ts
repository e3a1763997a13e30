import { type SQL, sql } from "drizzle-orm";
import { checkJobType, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { getJobDefinition, type JobDefinitionRecord } from "../definitions.ts";
import { toQueryError } from "../errors.ts";
import { JOBS_CHANNEL } from "../notify.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { toDate } from "../rows.ts";
import { flowKeyLimits, flowRateStarts, flowSlots, jobDefinitions, jobQueue } from "../schema/index.ts";
import { checkIdentifierLength, escapeLike, fail, isBlank, isInt32, isStorableText } from "../validate.ts";
import { adoptRunning, adoptRunningOfTypes } from "./adopt.ts";

/*
 * Flow control settings (pause, concurrency and rate limits) for operators, the CLI and the
 * dashboard. Every change commits with a notification on the jobs channel: a resume or a raised
 * limit makes queued work claimable, and listening workers claim at once instead of at their
 * next poll. Settings are global (job types and keys are not organization data).
 */

/** Most starts per interval; the interval in milliseconds (at most ~24 days, an int32). */
export interface RateLimitSetting {
  limit: number;
  intervalMs: number;
}

const INVALID = "flow.invalid_limit";

function checkMax(value: unknown, field: string): void {
  if (value !== undefined && value !== null && !(isInt32(value) && value > 0)) fail(INVALID, { field });
}

function checkRate(value: unknown, field: string): void {
  if (value === undefined || value === null) return;
  const rate = value as RateLimitSetting;
  if (typeof value !== "object" || !(isInt32(rate.limit) && rate.limit > 0)) fail(INVALID, { field: `${field}.limit` });
  if (!(isInt32(rate.intervalMs) && rate.intervalMs > 0)) fail(INVALID, { field: `${field}.intervalMs` });
}

const notify = sql`(select pg_notify(${JOBS_CHANNEL}, ''))`;

async function updateDefinition(executor: Executor, jobType: string, set: SQL) {
  checkJobType(jobType);
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`with updated as (update ${jobDefinitions} set ${set} where job_type = ${jobType} returning job_type)
        select job_type, ${notify} as notified from updated`,
    );
    if (row === undefined) throw new RunledgerError("job.definition_not_found", { details: { jobType } });
    return (await getJobDefinition(executor, jobType))!;
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Pause a job type: its queued jobs are not claimed (running ones finish) until `resumeJobType`.
 * Enqueueing still works. Pausing a paused type keeps its `pausedAt`. Throws
 * `job.definition_not_found` for an unknown type.
 */
export async function pauseJobType(executor: Executor, input: { jobType: string }): Promise<JobDefinitionRecord> {
  return updateDefinition(executor, input?.jobType, sql`paused_at = coalesce(paused_at, now())`);
}

/**
 * Resume a paused job type; listening workers are notified at commit and claim its jobs at once.
 * Throws `job.definition_not_found` for an unknown type.
 */
export async function resumeJobType(executor: Executor, input: { jobType: string }): Promise<JobDefinitionRecord> {
  return updateDefinition(executor, input?.jobType, sql`paused_at = null`);
}

export interface JobTypeLimitsInput {
  jobType: string;
  /** Most jobs of the type running at once across all workers; null removes the limit. */
  maxConcurrency?: number | null;
  /** Most jobs of the type running at once per concurrency key; null removes the limit. */
  maxConcurrencyPerKey?: number | null;
  /** Most starts of the type per interval; null removes the limit. */
  rateLimit?: RateLimitSetting | null;
}

/**
 * Set (or, with null, remove) a job type's limits; fields left out keep their value. Jobs of the
 * type already running count against a new concurrency limit. Throws `job.definition_not_found`
 * for an unknown type; invalid input (`flow.invalid_limit`) writes nothing.
 */
export async function setJobTypeLimits(executor: Executor, input: JobTypeLimitsInput): Promise<JobDefinitionRecord> {
  if (input === null || typeof input !== "object") fail(INVALID, {});
  checkJobType(input.jobType);
  checkMax(input.maxConcurrency, "maxConcurrency");
  checkMax(input.maxConcurrencyPerKey, "maxConcurrencyPerKey");
  checkRate(input.rateLimit, "rateLimit");
  const sets: SQL[] = [];
  if (input.maxConcurrency !== undefined) sets.push(sql`max_concurrency = ${input.maxConcurrency}::int`);
  if (input.maxConcurrencyPerKey !== undefined) {
    sets.push(sql`max_concurrency_per_key = ${input.maxConcurrencyPerKey}::int`);
  }
  if (input.rateLimit !== undefined) {
    sets.push(sql`rate_limit = ${input.rateLimit?.limit ?? null}::int`);
    sets.push(sql`rate_interval_ms = ${input.rateLimit?.intervalMs ?? null}::int`);
  }
  if (sets.length === 0) sets.push(sql`job_type = job_type`);
  const jobType = input.jobType;
  return executor.transaction(async (tx) => {
    const definition = await updateDefinition(tx, jobType, sql.join(sets, sql`, `));
    await adoptRunningOfTypes(tx, [jobType]);
    return definition;
  });
}

/** Limits for the concurrency keys matching a pattern. */
export interface KeyLimitRecord {
  /** An exact key, or a prefix ending in `*` (`tenant:*`); the longest matching pattern applies. */
  pattern: string;
  /** Most jobs with one matching key running at once, whatever their type; null for none. */
  maxConcurrency: number | null;
  /** Most starts of jobs with one matching key per interval; null for none. */
  rateLimit: RateLimitSetting | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface KeyLimitInput {
  pattern: string;
  maxConcurrency?: number | null;
  rateLimit?: RateLimitSetting | null;
}

function keyLimitFromRow(row: RawRow): KeyLimitRecord {
  return {
    pattern: row.pattern,
    maxConcurrency: row.max_concurrency == null ? null : Number(row.max_concurrency),
    rateLimit:
      row.rate_limit == null ? null : { limit: Number(row.rate_limit), intervalMs: Number(row.rate_interval_ms) },
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

function checkPattern(pattern: unknown): asserts pattern is string {
  if (isBlank(pattern) || !isStorableText(pattern as string)) fail(INVALID, { field: "pattern" });
  checkIdentifierLength(pattern as string, "pattern");
}

/**
 * Create or replace the limits of the keys matching `pattern` (at least one limit). Each matching
 * key is limited on its own: `tenant:*` with `maxConcurrency: 2` lets every `tenant:…` key run 2.
 */
export async function setKeyLimit(executor: Executor, input: KeyLimitInput): Promise<KeyLimitRecord> {
  if (input === null || typeof input !== "object") fail(INVALID, {});
  checkPattern(input.pattern);
  checkMax(input.maxConcurrency, "maxConcurrency");
  checkRate(input.rateLimit, "rateLimit");
  const max = input.maxConcurrency ?? null;
  const rate = input.rateLimit ?? null;
  if (max === null && rate === null) fail(INVALID, { field: "maxConcurrency" }, "a key limit needs a limit");
  const pattern = input.pattern;
  const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : null;
  try {
    return await executor.transaction(async (tx) => {
      const [row] = await queryRows<RawRow>(
        tx,
        sql`insert into ${flowKeyLimits} as k (pattern, max_concurrency, rate_limit, rate_interval_ms)
          values (${pattern}, ${max}::int, ${rate?.limit ?? null}::int, ${rate?.intervalMs ?? null}::int)
          on conflict (pattern) do update set max_concurrency = excluded.max_concurrency,
            rate_limit = excluded.rate_limit, rate_interval_ms = excluded.rate_interval_ms, updated_at = now()
          returning k.*, ${notify} as notified`,
      );
      if (max !== null) {
        await adoptRunning(
          tx,
          prefix === null
            ? sql`j.concurrency_key = ${pattern}`
            : sql`j.concurrency_key like ${`${escapeLike(prefix)}%`}`,
          sql`'["k",' || to_json(j.concurrency_key)::text || ']'`,
        );
      }
      return keyLimitFromRow(row!);
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Remove a key limit; throws `flow.key_limit_not_found` when there is none for the pattern. */
export async function removeKeyLimit(executor: Executor, input: { pattern: string }): Promise<KeyLimitRecord> {
  checkPattern(input?.pattern);
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`with removed as (delete from ${flowKeyLimits} where pattern = ${input.pattern} returning *)
        select removed.*, ${notify} as notified from removed`,
    );
    if (row === undefined)
      throw new RunledgerError("flow.key_limit_not_found", { details: { pattern: input.pattern } });
    return keyLimitFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** A concurrency or rate scope in use: what it limits and how much of it is taken now. */
export interface FlowScopeUsage {
  kind: "jobType" | "jobTypeKey" | "key";
  jobType: string | null;
  key: string | null;
  /** Jobs running in the scope (claimed under flow control, or running when its limit was set). */
  running: number;
  /** Starts in the scope's current rate window. */
  recentStarts: number;
}

/** Everything flow control is configured with, and the scopes in use (busiest first). */
export interface FlowControlState {
  jobTypes: JobDefinitionRecord[];
  keyLimits: KeyLimitRecord[];
  scopes: FlowScopeUsage[];
}

/**
 * Flow control as configured now: paused or limited job types, key limits, and up to `limit`
 * (default 100) scopes in use, busiest first. For the CLI and the dashboard.
 */
export async function getFlowControlState(
  executor: Executor,
  options: { limit?: number } = {},
): Promise<FlowControlState> {
  const limit = options.limit ?? 100;
  if (!(isInt32(limit) && limit > 0 && limit <= 1000)) fail("job.invalid_pagination", { field: "limit" });
  try {
    const types = await queryRows<{ job_type: string }>(
      executor,
      sql`select job_type from ${jobDefinitions}
        where paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null
          or rate_limit is not null
        order by job_type`,
    );
    const jobTypes = [];
    for (const { job_type } of types) {
      const definition = await getJobDefinition(executor, job_type);
      if (definition !== null) jobTypes.push(definition);
    }
    const keys = await queryRows<RawRow>(executor, sql`select * from ${flowKeyLimits} order by pattern`);
    const scopes = await queryRows<{ scope: string; running: number; starts: number }>(
      executor,
      sql`select scope, sum(running)::int as running, sum(starts)::int as starts from (
          select s.scope, count(*) as running, 0 as starts from ${flowSlots} s
          join ${jobQueue} j on j.id = s.job_id where j.status = 'LEASED' group by s.scope
          union all
          select scope, 0, count(*) from ${flowRateStarts} where expires_at > now() group by scope
        ) u group by scope order by 2 desc, 3 desc, 1 limit ${limit}`,
    );
    return {
      jobTypes,
      keyLimits: keys.map(keyLimitFromRow),
      scopes: scopes.map(({ scope, running, starts }) => {
        const [tag, a, b] = JSON.parse(scope) as string[];
        return {
          kind: tag === "t" ? "jobType" : tag === "tk" ? "jobTypeKey" : "key",
          jobType: tag === "k" ? null : a!,
          key: tag === "t" ? null : tag === "tk" ? b! : a!,
          running: Number(running),
          recentStarts: Number(starts),
        };
      }),
    };
  } catch (error) {
    throw toQueryError(error);
  }
}
