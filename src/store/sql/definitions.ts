import { type SQL, sql } from "drizzle-orm";
import { JOBS_CHANNEL } from "../notify.ts";
import { statement } from "../query.ts";
import type { DbRow } from "../rows.ts";
import { jobDefinitions, jobSchedules } from "../schema/index.ts";

/*
 * Job definitions' statements (src/store/definitions.ts): the catalog's writes, the reads, and the
 * guard that keeps a type with an active schedule from being disabled.
 */

export type DefinitionRow = DbRow<typeof jobDefinitions>;

/** `definitionWrite`'s row: the definition as written and what the write changed. */
export type WrittenDefinitionRow = DefinitionRow & {
  /** The enabled flag before the write; null for a new definition. */
  was_enabled: boolean | null;
  limits_changed: boolean;
  concurrency_limited: boolean;
};

/*
 * Upsert one definition, writing only when something differs (no row then: an unchanged
 * definition is neither rewritten nor its `updated_at` moved). `keepEnabled` keeps an existing
 * row's enabled flag (an operator's pause); each flow limit is written only when its `set…` flag
 * is true (a null value removes it). The row says whether it was enabled before (null: new),
 * whether its limits changed, and whether it now limits concurrency (running jobs to adopt).
 */
export const definitionWrite = statement<WrittenDefinitionRow>(
  "runledger_definition_write",
  sql`with previous as (select is_enabled, max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms
      from ${jobDefinitions} where job_type = ${sql.placeholder("jobType")})
    insert into ${jobDefinitions} as d (job_type, version, max_attempts, default_timeout_seconds, default_priority, is_enabled,
      max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms)
    values (${sql.placeholder("jobType")}, ${sql.placeholder("version")}, ${sql.placeholder("maxAttempts")},
      ${sql.placeholder("defaultTimeoutSeconds")}, ${sql.placeholder("defaultPriority")}, ${sql.placeholder("isEnabled")},
      ${sql.placeholder("max")}::int, ${sql.placeholder("perKey")}::int, ${sql.placeholder("rate")}::int,
      ${sql.placeholder("rateMs")}::int)
    on conflict (job_type) do update set
      version = excluded.version, max_attempts = excluded.max_attempts,
      default_timeout_seconds = excluded.default_timeout_seconds, default_priority = excluded.default_priority,
      is_enabled = case when ${sql.placeholder("keepEnabled")}::boolean then d.is_enabled else excluded.is_enabled end,
      max_concurrency = case when ${sql.placeholder("setMax")}::boolean
        then excluded.max_concurrency else d.max_concurrency end,
      max_concurrency_per_key = case when ${sql.placeholder("setPerKey")}::boolean
        then excluded.max_concurrency_per_key else d.max_concurrency_per_key end,
      rate_limit = case when ${sql.placeholder("setRate")}::boolean then excluded.rate_limit else d.rate_limit end,
      rate_interval_ms = case when ${sql.placeholder("setRate")}::boolean
        then excluded.rate_interval_ms else d.rate_interval_ms end
    where (d.version, d.max_attempts, d.default_timeout_seconds, d.default_priority) is distinct from
        (excluded.version, excluded.max_attempts, excluded.default_timeout_seconds, excluded.default_priority)
      or (not ${sql.placeholder("keepEnabled")}::boolean and d.is_enabled is distinct from excluded.is_enabled)
      or (${sql.placeholder("setMax")}::boolean and d.max_concurrency is distinct from excluded.max_concurrency)
      or (${sql.placeholder("setPerKey")}::boolean
        and d.max_concurrency_per_key is distinct from excluded.max_concurrency_per_key)
      or (${sql.placeholder("setRate")}::boolean and (d.rate_limit, d.rate_interval_ms) is distinct from
        (excluded.rate_limit, excluded.rate_interval_ms))
    returning d.*, (select is_enabled from previous) as was_enabled,
      not exists (select 1 from previous p where p.max_concurrency is not distinct from d.max_concurrency
        and p.max_concurrency_per_key is not distinct from d.max_concurrency_per_key
        and p.rate_limit is not distinct from d.rate_limit and p.rate_interval_ms is not distinct from d.rate_interval_ms)
        as limits_changed,
      d.max_concurrency is not null or d.max_concurrency_per_key is not null as concurrency_limited`,
);

/** Insert a definition unless one exists for the type (no row then: the existing one is left as it is). */
export const definitionInsertIfMissing = statement<DefinitionRow>(
  "runledger_definition_insert_if_missing",
  sql`insert into ${jobDefinitions} (job_type, version, max_attempts, default_timeout_seconds, default_priority,
      is_enabled, max_concurrency, max_concurrency_per_key, rate_limit, rate_interval_ms)
    values (${sql.placeholder("jobType")}, ${sql.placeholder("version")}, ${sql.placeholder("maxAttempts")},
      ${sql.placeholder("defaultTimeoutSeconds")}, ${sql.placeholder("defaultPriority")}, ${sql.placeholder("isEnabled")},
      ${sql.placeholder("max")}::int, ${sql.placeholder("perKey")}::int, ${sql.placeholder("rate")}::int,
      ${sql.placeholder("rateMs")}::int)
    on conflict (job_type) do nothing
    returning *`,
);

export const definitionGet = statement<DefinitionRow>(
  "runledger_definition_get",
  sql`select * from ${jobDefinitions} where job_type = ${sql.placeholder("jobType")}`,
);

/**
 * A page of definitions by job type (keyset on the primary key), those whose type contains
 * `contains` (a LIKE pattern, already escaped) when given; one row more than `limit` says there is
 * a next page.
 */
export function definitionList(filter: { contains?: string; limit: number; after?: string }): SQL {
  return sql`select * from ${jobDefinitions} where true
    ${filter.contains === undefined ? sql`` : sql`and job_type ilike ${`%${filter.contains}%`}`}
    ${filter.after === undefined ? sql`` : sql`and job_type > ${filter.after}`}
    order by job_type limit ${filter.limit + 1}`;
}

/** Wake listening workers: a changed limit may make queued work claimable. Sent at commit. */
export const jobsNotify = statement("runledger_jobs_notify", sql`select pg_notify(${JOBS_CHANNEL}, '')`);

/*
 * The guard for disabling a type: schedules and definitions are locked against concurrent change
 * (waiting at most 5 s, or less if the caller's `lock_timeout` says so; statement time capped at
 * 30 s), then an active schedule of one of the types refuses. A schedule being made active
 * share-locks its definition (sql/schedules.ts), so it cannot slip in under the guard.
 */

/** The guard's timeouts, for the rest of the transaction. */
export const disableGuardTimeouts = statement(
  "runledger_disable_guard_timeouts",
  sql`select set_config('statement_timeout', '30s', true),
    set_config('lock_timeout', case when current_setting('lock_timeout') not in ('0', '0ms')
      and current_setting('lock_timeout')::interval < interval '5s' then current_setting('lock_timeout') else '5s' end,
      true)`,
);

export const disableGuardLock = statement(
  "runledger_disable_guard_lock",
  sql`lock table ${jobSchedules}, ${jobDefinitions} in share row exclusive mode`,
);

/** The first active schedule (by name) of one of `jobTypes` (a text array literal). */
export const activeScheduleOfTypes = statement<{ name: string; job_type: string }>(
  "runledger_active_schedule_of_types",
  sql`select name, job_type from ${jobSchedules}
    where is_active and job_type = any(${sql.placeholder("jobTypes")}::text[]) order by name limit 1`,
);

/** The enabled definitions among `jobTypes` (a text array literal), locked: an exact sync disables those it lacks. */
export const enabledDefinitionsLocked = statement<{ job_type: string }>(
  "runledger_enabled_definitions_locked",
  sql`select job_type from ${jobDefinitions}
    where is_enabled and job_type = any(${sql.placeholder("jobTypes")}::text[]) order by job_type for update`,
);

export const definitionsDisable = statement(
  "runledger_definitions_disable",
  sql`update ${jobDefinitions} set is_enabled = false where job_type = any(${sql.placeholder("jobTypes")}::text[])`,
);
