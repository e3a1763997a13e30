import { sql } from "drizzle-orm";
import { checkJobType, MAX_TIMEOUT_SECONDS, RunledgerError } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { toQueryError } from "./errors.ts";

import { JOBS_CHANNEL } from "./notify.ts";
import { queryRows } from "./query.ts";
import { type Page, type RawRow, toDate } from "./rows.ts";
import { jobDefinitions, jobSchedules } from "./schema/index.ts";
import { adoptRunningOfTypes } from "./sql/flow.ts";
import { checkLimit, escapeLike, fail, isInt32, matchable } from "./validate.ts";

/** A job type's enqueue-time defaults and its on/off switch for new work. */
export interface JobDefinitionRecord {
  jobType: string;
  version: number;
  maxAttempts: number;
  defaultTimeoutSeconds: number;
  defaultPriority: number;
  isEnabled: boolean;
  /** When the type was paused (its queued jobs are not claimed), or null. */
  pausedAt: Date | null;
  /** Most jobs of the type running at once across all workers, or null (no limit). */
  maxConcurrency: number | null;
  /** Most jobs of the type running at once per concurrency key, or null. */
  maxConcurrencyPerKey: number | null;
  /** Most starts of the type per interval, or null. */
  rateLimit: { limit: number; intervalMs: number } | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface JobDefinitionUpsert {
  jobType: string;
  version?: number;
  maxAttempts?: number;
  defaultTimeoutSeconds?: number;
  defaultPriority?: number;
  isEnabled?: boolean;
  /**
   * Flow limits (README "Flow control"): a number sets one, null removes it, and a field left out
   * keeps the stored value (none for a new definition). A catalog passes all three, so its sync
   * makes the database match it.
   */
  maxConcurrency?: number | null;
  maxConcurrencyPerKey?: number | null;
  rateLimit?: { limit: number; intervalMs: number } | null;
}

type FlowFields = "maxConcurrency" | "maxConcurrencyPerKey" | "rateLimit";

/** A checked upsert: every setting resolved, flow limits as given (undefined keeps the stored one). */
type ResolvedDefinition = Required<Omit<JobDefinitionUpsert, FlowFields>> & Pick<JobDefinitionUpsert, FlowFields>;

const DEFAULTS = { version: 1, maxAttempts: 8, defaultTimeoutSeconds: 900, defaultPriority: 100, isEnabled: true };

function definitionFromRow(row: RawRow): JobDefinitionRecord {
  return {
    jobType: row.job_type,
    version: Number(row.version),
    maxAttempts: Number(row.max_attempts),
    defaultTimeoutSeconds: Number(row.default_timeout_seconds),
    defaultPriority: Number(row.default_priority),
    isEnabled: row.is_enabled,
    pausedAt: row.paused_at == null ? null : toDate(row.paused_at),
    maxConcurrency: row.max_concurrency == null ? null : Number(row.max_concurrency),
    maxConcurrencyPerKey: row.max_concurrency_per_key == null ? null : Number(row.max_concurrency_per_key),
    rateLimit:
      row.rate_limit == null ? null : { limit: Number(row.rate_limit), intervalMs: Number(row.rate_interval_ms) },
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

function resolve(input: JobDefinitionUpsert): ResolvedDefinition {
  checkJobType(input.jobType);
  const full = { ...DEFAULTS, ...input };
  for (const field of ["version", "maxAttempts", "defaultTimeoutSeconds"] as const) {
    if (!isInt32(full[field]) || full[field] <= 0)
      fail("job_definition.invalid_value", { jobType: input.jobType, field });
  }
  if (full.defaultTimeoutSeconds > MAX_TIMEOUT_SECONDS)
    fail("job_definition.invalid_value", { jobType: input.jobType, field: "defaultTimeoutSeconds" });
  if (!isInt32(full.defaultPriority))
    fail("job_definition.invalid_value", { jobType: input.jobType, field: "defaultPriority" });
  if (typeof full.isEnabled !== "boolean")
    fail("job_definition.invalid_value", { jobType: input.jobType, field: "isEnabled" });
  checkFlowLimits(input);
  return full;
}

const isLimit = (value: unknown) => isInt32(value) && value > 0;

/** Flow limits are positive int32s (the interval in milliseconds); null or absent passes. */
function checkFlowLimits(input: { jobType: string } & Pick<JobDefinitionUpsert, FlowFields>): void {
  const invalid = (field: string) => fail("job_definition.invalid_value", { jobType: input.jobType, field });
  for (const field of ["maxConcurrency", "maxConcurrencyPerKey"] as const) {
    if (input[field] != null && !isLimit(input[field])) invalid(field);
  }
  const rate = input.rateLimit;
  if (rate == null) return;
  if (typeof rate !== "object" || !isLimit(rate.limit)) invalid("rateLimit.limit");
  if (!isLimit(rate.intervalMs)) invalid("rateLimit.intervalMs");
}

/** The flow columns' values and whether the upsert writes each (see `JobDefinitionUpsert`). */
function flowValues(d: ResolvedDefinition) {
  return {
    setMax: d.maxConcurrency !== undefined,
    max: d.maxConcurrency ?? null,
    setPerKey: d.maxConcurrencyPerKey !== undefined,
    perKey: d.maxConcurrencyPerKey ?? null,
    setRate: d.rateLimit !== undefined,
    rate: d.rateLimit?.limit ?? null,
    rateMs: d.rateLimit?.intervalMs ?? null,
  };
}

/** Refuse a list naming a type twice (ON CONFLICT cannot touch one row twice in a statement). */
function unique<T extends { jobType: string }>(definitions: T[]): T[] {
  const seen = new Set<string>();
  for (const d of definitions) {
    if (seen.has(d.jobType)) fail("job_definition.duplicate_job_type", { jobType: d.jobType });
    seen.add(d.jobType);
  }
  return definitions;
}

/**
 * Upsert one definition, writing only when something differs. Returns the row (with `was_enabled`,
 * `limits_changed` and `concurrency_limited`) or, when nothing was written, `{ unchanged: true }`.
 */
async function write(executor: Executor, d: ResolvedDefinition, keepEnabled: boolean): Promise<RawRow> {
  const f = flowValues(d);
  const [row] = await queryRows<RawRow>(
    executor,
    sql`with previous as (select is_enabled, max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms
        from ${jobDefinitions} where job_type = ${d.jobType})
      insert into ${jobDefinitions} as d (job_type, version, max_attempts, default_timeout_seconds, default_priority, is_enabled,
        max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms)
      values (${d.jobType}, ${d.version}, ${d.maxAttempts}, ${d.defaultTimeoutSeconds}, ${d.defaultPriority}, ${d.isEnabled},
        ${f.max}::int, ${f.perKey}::int, ${f.rate}::int, ${f.rateMs}::int)
      on conflict (job_type) do update set
        version = excluded.version, max_attempts = excluded.max_attempts,
        default_timeout_seconds = excluded.default_timeout_seconds, default_priority = excluded.default_priority,
        is_enabled = case when ${keepEnabled}::boolean then d.is_enabled else excluded.is_enabled end,
        max_concurrency = case when ${f.setMax}::boolean then excluded.max_concurrency else d.max_concurrency end,
        max_concurrency_per_key = case when ${f.setPerKey}::boolean
          then excluded.max_concurrency_per_key else d.max_concurrency_per_key end,
        rate_limit = case when ${f.setRate}::boolean then excluded.rate_limit else d.rate_limit end,
        rate_interval_ms = case when ${f.setRate}::boolean then excluded.rate_interval_ms else d.rate_interval_ms end
      where (d.version, d.max_attempts, d.default_timeout_seconds, d.default_priority) is distinct from
          (excluded.version, excluded.max_attempts, excluded.default_timeout_seconds, excluded.default_priority)
        or (not ${keepEnabled}::boolean and d.is_enabled is distinct from excluded.is_enabled)
        or (${f.setMax}::boolean and d.max_concurrency is distinct from excluded.max_concurrency)
        or (${f.setPerKey}::boolean and d.max_concurrency_per_key is distinct from excluded.max_concurrency_per_key)
        or (${f.setRate}::boolean and (d.rate_limit, d.rate_interval_ms) is distinct from
          (excluded.rate_limit, excluded.rate_interval_ms))
      returning d.*, (select is_enabled from previous) as was_enabled,
        not exists (select 1 from previous p where p.max_concurrency is not distinct from d.max_concurrency
          and p.max_concurrency_per_key is not distinct from d.max_concurrency_per_key
          and p.rate_limit is not distinct from d.rate_limit and p.rate_interval_ms is not distinct from d.rate_interval_ms)
          as limits_changed,
        d.max_concurrency is not null or d.max_concurrency_per_key is not null as concurrency_limited`,
  );
  return row ?? { job_type: d.jobType, unchanged: true };
}

/**
 * After writes that changed limits: running jobs of those types count against the new limits,
 * and listening workers look again (a raised or removed limit makes queued work claimable).
 */
async function applyLimitChanges(tx: Executor, rows: readonly RawRow[]): Promise<void> {
  const changed = rows.filter((row) => row.limits_changed === true);
  if (changed.length === 0) return;
  await adoptRunningOfTypes(
    tx,
    changed.filter((row) => row.concurrency_limited === true).map((row) => row.job_type as string),
  );
  await tx.execute(sql`select pg_notify(${JOBS_CHANNEL}, '')`);
}

/** Insert or overwrite a definition (writes only when something differs). */
export async function upsertJobDefinition(
  executor: Executor,
  input: JobDefinitionUpsert,
): Promise<JobDefinitionRecord> {
  const d = resolve(input);
  try {
    return await writeGuarded(executor, d);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Write one definition; disabling it is refused while an active schedule uses the type
 * (`job_definition.active_schedule_exists`), under the same locks as a catalog sync.
 */
async function writeGuarded(executor: Executor, d: ResolvedDefinition): Promise<JobDefinitionRecord> {
  const { setMax, setPerKey, setRate } = flowValues(d);
  if (d.isEnabled && !setMax && !setPerKey && !setRate) {
    await write(executor, d, false);
    return (await getJobDefinition(executor, d.jobType))!;
  }
  return executor.transaction(async (tx) => {
    if (!d.isEnabled) await refuseActiveSchedules(tx, [d.jobType], "job_definition.active_schedule_exists");
    await applyLimitChanges(tx, [await write(tx, d, false)]);
    return (await getJobDefinition(tx, d.jobType))!;
  });
}

/**
 * Insert a definition unless one exists for the type; an existing row is left exactly as it is
 * (an operator's settings and pause win). Returns the stored definition and whether this call
 * created it.
 */
export async function insertJobDefinitionIfMissing(
  executor: Executor,
  input: JobDefinitionUpsert,
): Promise<{ created: boolean; definition: JobDefinitionRecord }> {
  const d = resolve(input);
  const f = flowValues(d);
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`insert into ${jobDefinitions} (job_type, version, max_attempts, default_timeout_seconds, default_priority, is_enabled,
          max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms)
        values (${d.jobType}, ${d.version}, ${d.maxAttempts}, ${d.defaultTimeoutSeconds}, ${d.defaultPriority}, ${d.isEnabled},
          ${f.max}::int, ${f.perKey}::int, ${f.rate}::int, ${f.rateMs}::int)
        on conflict (job_type) do nothing
        returning *`,
    );
    if (row !== undefined) return { created: true, definition: definitionFromRow(row) };
    return { created: false, definition: (await getJobDefinition(executor, d.jobType))! };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** One definition, or null. */
export async function getJobDefinition(executor: Executor, jobType: string): Promise<JobDefinitionRecord | null> {
  if (!matchable(jobType)) return null;
  try {
    const [row] = await queryRows<RawRow>(executor, sql`select * from ${jobDefinitions} where job_type = ${jobType}`);
    return row === undefined ? null : definitionFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Definitions by job type, optionally those whose type contains a substring (case-insensitive). */
export async function listJobDefinitions(
  executor: Executor,
  filter: { jobTypeContains?: string; limit: number; after?: string },
): Promise<Page<JobDefinitionRecord, string>> {
  checkLimit(filter.limit);
  const contains = filter.jobTypeContains === undefined ? undefined : escapeLike(filter.jobTypeContains);
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select * from ${jobDefinitions} where true
        ${contains === undefined ? sql`` : sql`and job_type ilike ${`%${contains}%`}`}
        ${filter.after === undefined ? sql`` : sql`and job_type > ${filter.after}`}
        order by job_type limit ${filter.limit + 1}`,
    );
    const items = rows.slice(0, filter.limit).map(definitionFromRow);
    return { items, next: rows.length > filter.limit ? (items.at(-1)?.jobType ?? null) : null };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Change some fields of a definition; null when it does not exist. */
export async function updateJobDefinition(
  executor: Executor,
  jobType: string,
  update: Omit<JobDefinitionUpsert, "jobType" | "version">,
): Promise<JobDefinitionRecord | null> {
  checkJobType(jobType);
  const current = await getJobDefinition(executor, jobType);
  if (current === null) return null;
  // Limits not in `update` are left to the database (not rewritten from this read, which a
  // concurrent `setJobTypeLimits` may have made stale).
  const unchangedLimits = { maxConcurrency: undefined, maxConcurrencyPerKey: undefined, rateLimit: undefined };
  const d = resolve({ ...current, ...unchangedLimits, ...update, jobType });
  try {
    return await writeGuarded(executor, d);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Guard for disabling: lock schedules and definitions against concurrent change (waiting at most
 * 5 s, statement time capped at 30 s) and refuse while an active schedule uses one of the types.
 */
async function refuseActiveSchedules(
  tx: Executor,
  jobTypes: readonly string[],
  code:
    | "catalog.active_schedule_for_disabled_job_type"
    | "catalog.active_schedule_for_absent_job_type"
    | "job_definition.active_schedule_exists",
): Promise<void> {
  if (jobTypes.length === 0) return;
  await tx.execute(sql`select set_config('statement_timeout', '30s', true)`);
  await tx.execute(sql`select set_config('lock_timeout', case when current_setting('lock_timeout') not in ('0', '0ms')
    and current_setting('lock_timeout')::interval < interval '5s' then current_setting('lock_timeout') else '5s' end, true)`);
  await tx.execute(sql`lock table ${jobSchedules}, ${jobDefinitions} in share row exclusive mode`);
  const [active] = await queryRows<{ name: string; job_type: string }>(
    tx,
    sql`select name, job_type from ${jobSchedules} where is_active and job_type = any(${sql.param([...jobTypes])}::text[]) order by name limit 1`,
  );
  if (active !== undefined)
    throw new RunledgerError(code, { details: { scheduleName: active.name, jobType: active.job_type } });
}

/**
 * What a definition sync did, by job type (each list sorted). Every catalog type is in exactly one
 * of `created`, `updated` and `unchanged`; `disabled` lists the types this sync disabled, which
 * also appear in one of the first three (an exact sync's absent types appear only there).
 */
export interface DefinitionSyncResult {
  /** Types that had no definition row. */
  created: string[];
  /** Types whose row this sync changed. */
  updated: string[];
  /** Types whose row already matched. */
  unchanged: string[];
  /** Types this sync turned disabled: written disabled (new or previously enabled), or, for an exact sync, absent from the catalog. */
  disabled: string[];
}

/**
 * Catalog sync (additive): write every definition. `preserve-enabled` keeps an existing row's
 * enabled flag (an operator's pause survives restarts); `restore-enabled` writes it as given.
 * Flow limits are written as given (see `JobDefinitionUpsert`); a changed limit counts the type's
 * running jobs and notifies workers, in the sync's transaction.
 * Disabling is refused while an active schedule uses the type.
 */
export async function syncJobDefinitions(
  executor: Executor,
  definitions: readonly JobDefinitionUpsert[],
  mode: "preserve-enabled" | "restore-enabled",
): Promise<DefinitionSyncResult> {
  const resolved = unique(definitions.map(resolve));
  try {
    return await executor.transaction(async (tx) => {
      const disabling = resolved.filter((d) => !d.isEnabled).map((d) => d.jobType);
      await refuseActiveSchedules(tx, disabling, "catalog.active_schedule_for_disabled_job_type");
      const result: DefinitionSyncResult = { created: [], updated: [], unchanged: [], disabled: [] };
      const rows: RawRow[] = [];
      for (const d of resolved) {
        const row = await write(tx, d, mode === "preserve-enabled");
        rows.push(row);
        if (row.unchanged === true) result.unchanged.push(d.jobType);
        else if (row.was_enabled === null) result.created.push(d.jobType);
        else result.updated.push(d.jobType);
        if (!d.isEnabled && row.unchanged !== true && row.was_enabled !== false && row.is_enabled === false)
          result.disabled.push(d.jobType);
      }
      await applyLimitChanges(tx, rows);
      for (const list of Object.values(result)) list.sort();
      return result;
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Exact sync: write every catalog definition with its own enabled state, then disable enabled
 * definitions inside `scope` that the catalog lacks (listed in `disabled` only). Never deletes, never touches types outside
 * the scope, and refuses (writing nothing) while an active schedule uses a type it would disable.
 */
export async function syncJobDefinitionsExact(
  executor: Executor,
  definitions: readonly JobDefinitionUpsert[],
  scope: readonly string[],
): Promise<DefinitionSyncResult> {
  if (definitions.length === 0 || scope.length === 0) fail("job_definition.empty_job_type_list");
  const resolved = unique(definitions.map(resolve));
  const inCatalog = new Set(resolved.map((d) => d.jobType));
  try {
    return await executor.transaction(async (tx) => {
      const absent = (
        await queryRows<{ job_type: string }>(
          tx,
          sql`select job_type from ${jobDefinitions} where is_enabled and job_type = any(${sql.param([...scope])}::text[]) order by job_type for update`,
        )
      )
        .map((r) => r.job_type)
        .filter((t) => !inCatalog.has(t));
      await refuseActiveSchedules(tx, absent, "catalog.active_schedule_for_absent_job_type");
      const result = await syncJobDefinitions(tx, resolved, "restore-enabled");
      if (absent.length > 0) {
        await tx.execute(
          sql`update ${jobDefinitions} set is_enabled = false where job_type = any(${sql.param(absent)}::text[])`,
        );
      }
      return { ...result, disabled: [...result.disabled, ...absent].sort() };
    });
  } catch (error) {
    throw toQueryError(error);
  }
}
