import { checkJobType, MAX_TIMEOUT_SECONDS, RunledgerError } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { translating } from "./errors.ts";
import { queryRows, textArrayLiteral } from "./query.ts";
import { type Page, toDate, toDateOrNull } from "./rows.ts";
import {
  activeScheduleOfTypes,
  type DefinitionRow,
  definitionGet,
  definitionInsertIfMissing,
  definitionList,
  definitionsDisable,
  definitionWrite,
  disableGuardLock,
  disableGuardTimeouts,
  enabledDefinitionsLocked,
  jobsNotify,
  type WrittenDefinitionRow,
} from "./sql/definitions.ts";
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

function definitionFromRow(row: DefinitionRow): JobDefinitionRecord {
  return {
    jobType: row.job_type,
    version: Number(row.version),
    maxAttempts: Number(row.max_attempts),
    defaultTimeoutSeconds: Number(row.default_timeout_seconds),
    defaultPriority: Number(row.default_priority),
    isEnabled: row.is_enabled,
    pausedAt: toDateOrNull(row.paused_at),
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

/** A definition's values for `definitionWrite` and `definitionInsertIfMissing`. */
function definitionValues(d: ResolvedDefinition) {
  return {
    jobType: d.jobType,
    version: d.version,
    maxAttempts: d.maxAttempts,
    defaultTimeoutSeconds: d.defaultTimeoutSeconds,
    defaultPriority: d.defaultPriority,
    isEnabled: d.isEnabled,
    setMax: d.maxConcurrency !== undefined,
    max: d.maxConcurrency ?? null,
    setPerKey: d.maxConcurrencyPerKey !== undefined,
    perKey: d.maxConcurrencyPerKey ?? null,
    setRate: d.rateLimit !== undefined,
    rate: d.rateLimit?.limit ?? null,
    rateMs: d.rateLimit?.intervalMs ?? null,
  };
}

/** Refuse a list naming a type twice: a sync writes each type once, and a list is no order of precedence. */
function unique<T extends { jobType: string }>(definitions: T[]): T[] {
  const seen = new Set<string>();
  for (const d of definitions) {
    if (seen.has(d.jobType)) fail("job_definition.duplicate_job_type", { jobType: d.jobType });
    seen.add(d.jobType);
  }
  return definitions;
}

/** Upsert one definition (see `definitionWrite`); undefined when nothing differed, so nothing was written. */
async function write(
  executor: Executor,
  d: ResolvedDefinition,
  keepEnabled: boolean,
): Promise<WrittenDefinitionRow | undefined> {
  const [row] = await definitionWrite.run(executor, { ...definitionValues(d), keepEnabled });
  return row;
}

/**
 * After writes that changed limits: running jobs of those types count against the new limits,
 * and listening workers look again (a raised or removed limit makes queued work claimable).
 */
async function applyLimitChanges(tx: Executor, rows: readonly (WrittenDefinitionRow | undefined)[]): Promise<void> {
  const changed = rows.filter((row) => row?.limits_changed === true) as WrittenDefinitionRow[];
  if (changed.length === 0) return;
  await adoptRunningOfTypes(
    tx,
    changed.filter((row) => row.concurrency_limited === true).map((row) => row.job_type),
  );
  await jobsNotify.run(tx, {});
}

/** Insert or overwrite a definition (writes only when something differs). */
export async function upsertJobDefinition(
  executor: Executor,
  input: JobDefinitionUpsert,
): Promise<JobDefinitionRecord> {
  const d = resolve(input);
  return translating(() => writeGuarded(executor, d));
}

/**
 * Write one definition; disabling it is refused while an active schedule uses the type
 * (`job_definition.active_schedule_exists`), under the same locks as a catalog sync.
 */
async function writeGuarded(executor: Executor, d: ResolvedDefinition): Promise<JobDefinitionRecord> {
  const limitsGiven =
    d.maxConcurrency !== undefined || d.maxConcurrencyPerKey !== undefined || d.rateLimit !== undefined;
  if (d.isEnabled && !limitsGiven) {
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
  return translating(async () => {
    const [row] = await definitionInsertIfMissing.run(executor, definitionValues(d));
    if (row !== undefined) return { created: true, definition: definitionFromRow(row) };
    return { created: false, definition: (await getJobDefinition(executor, d.jobType))! };
  });
}

/** One definition, or null. */
export async function getJobDefinition(executor: Executor, jobType: string): Promise<JobDefinitionRecord | null> {
  if (!matchable(jobType)) return null;
  return translating(async () => {
    const [row] = await definitionGet.run(executor, { jobType });
    return row === undefined ? null : definitionFromRow(row);
  });
}

/** Definitions by job type, optionally those whose type contains a substring (case-insensitive). */
export async function listJobDefinitions(
  executor: Executor,
  filter: { jobTypeContains?: string; limit: number; after?: string },
): Promise<Page<JobDefinitionRecord, string>> {
  checkLimit(filter.limit);
  const contains = filter.jobTypeContains === undefined ? undefined : escapeLike(filter.jobTypeContains);
  return translating(async () => {
    const rows = await queryRows<DefinitionRow>(
      executor,
      definitionList({ contains, limit: filter.limit, after: filter.after }),
    );
    const items = rows.slice(0, filter.limit).map(definitionFromRow);
    return { items, next: rows.length > filter.limit ? (items.at(-1)?.jobType ?? null) : null };
  });
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
  return translating(() => writeGuarded(executor, d));
}

/** Guard for disabling (see sql/definitions.ts): refuse while an active schedule uses one of the types. */
async function refuseActiveSchedules(
  tx: Executor,
  jobTypes: readonly string[],
  code:
    | "catalog.active_schedule_for_disabled_job_type"
    | "catalog.active_schedule_for_absent_job_type"
    | "job_definition.active_schedule_exists",
): Promise<void> {
  if (jobTypes.length === 0) return;
  await disableGuardTimeouts.run(tx, {});
  await disableGuardLock.run(tx, {});
  const [active] = await activeScheduleOfTypes.run(tx, { jobTypes: textArrayLiteral(jobTypes) });
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
  return translating(() =>
    executor.transaction(async (tx) => {
      const disabling = resolved.filter((d) => !d.isEnabled).map((d) => d.jobType);
      await refuseActiveSchedules(tx, disabling, "catalog.active_schedule_for_disabled_job_type");
      const result: DefinitionSyncResult = { created: [], updated: [], unchanged: [], disabled: [] };
      const rows: (WrittenDefinitionRow | undefined)[] = [];
      for (const d of resolved) {
        const row = await write(tx, d, mode === "preserve-enabled");
        rows.push(row);
        if (row === undefined) result.unchanged.push(d.jobType);
        else if (row.was_enabled === null) result.created.push(d.jobType);
        else result.updated.push(d.jobType);
        if (!d.isEnabled && row !== undefined && row.was_enabled !== false && !row.is_enabled)
          result.disabled.push(d.jobType);
      }
      await applyLimitChanges(tx, rows);
      for (const list of Object.values(result)) list.sort();
      return result;
    }),
  );
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
  return translating(() =>
    executor.transaction(async (tx) => {
      const absent = (await enabledDefinitionsLocked.run(tx, { jobTypes: textArrayLiteral(scope) }))
        .map((r) => r.job_type)
        .filter((t) => !inCatalog.has(t));
      await refuseActiveSchedules(tx, absent, "catalog.active_schedule_for_absent_job_type");
      const result = await syncJobDefinitions(tx, resolved, "restore-enabled");
      if (absent.length > 0) await definitionsDisable.run(tx, { jobTypes: textArrayLiteral(absent) });
      return { ...result, disabled: [...result.disabled, ...absent].sort() };
    }),
  );
}
