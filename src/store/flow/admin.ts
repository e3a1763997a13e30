import { checkJobType, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { getJobDefinition, type JobDefinitionRecord } from "../definitions.ts";
import { translating } from "../errors.ts";
import { type DbRow, toDate } from "../rows.ts";
import type { flowKeyLimits } from "../schema/index.ts";
import {
  adoptRunningOfKeyPattern,
  adoptRunningOfTypes,
  definitionFlowUpdate,
  flowControlledJobTypes,
  flowScopeUsage,
  keyLimitDelete,
  keyLimitList,
  keyLimitUpsert,
} from "../sql/flow.ts";
import { checkIdentifierLength, fail, isBlank, isInt32, isStorableText, isValidDate } from "../validate.ts";

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

/** A flow change to a definition (see `definitionFlowUpdate`); fields left out keep their value. */
interface FlowChange {
  paused?: boolean;
  maxConcurrency?: number | null;
  maxConcurrencyPerKey?: number | null;
  rateLimit?: RateLimitSetting | null;
}

async function updateDefinition(executor: Executor, jobType: string, change: FlowChange): Promise<JobDefinitionRecord> {
  checkJobType(jobType);
  return translating(async () => {
    const [row] = await definitionFlowUpdate.run(executor, {
      jobType,
      paused: change.paused ?? null,
      setMax: change.maxConcurrency !== undefined,
      max: change.maxConcurrency ?? null,
      setPerKey: change.maxConcurrencyPerKey !== undefined,
      perKey: change.maxConcurrencyPerKey ?? null,
      setRate: change.rateLimit !== undefined,
      rateLimit: change.rateLimit?.limit ?? null,
      rateIntervalMs: change.rateLimit?.intervalMs ?? null,
    });
    if (row === undefined) throw new RunledgerError("job.definition_not_found", { details: { jobType } });
    return (await getJobDefinition(executor, jobType))!;
  });
}

/**
 * Pause a job type: its queued jobs are not claimed (running ones finish) until `resumeJobType`.
 * Enqueueing still works. Pausing a paused type keeps its `pausedAt`. Throws
 * `job.definition_not_found` for an unknown type.
 */
export async function pauseJobType(executor: Executor, input: { jobType: string }): Promise<JobDefinitionRecord> {
  return updateDefinition(executor, input?.jobType, { paused: true });
}

/**
 * Resume a paused job type; listening workers are notified at commit and claim its jobs at once.
 * Throws `job.definition_not_found` for an unknown type.
 */
export async function resumeJobType(executor: Executor, input: { jobType: string }): Promise<JobDefinitionRecord> {
  return updateDefinition(executor, input?.jobType, { paused: false });
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
  const { jobType, maxConcurrency, maxConcurrencyPerKey, rateLimit } = input;
  return executor.transaction(async (tx) => {
    const definition = await updateDefinition(tx, jobType, { maxConcurrency, maxConcurrencyPerKey, rateLimit });
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

function keyLimitFromRow(row: DbRow<typeof flowKeyLimits>): KeyLimitRecord {
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
  return translating(() =>
    executor.transaction(async (tx) => {
      const [row] = await keyLimitUpsert.run(tx, {
        pattern,
        max,
        rateLimit: rate?.limit ?? null,
        rateIntervalMs: rate?.intervalMs ?? null,
      });
      if (max !== null) await adoptRunningOfKeyPattern(tx, pattern);
      return keyLimitFromRow(row!);
    }),
  );
}

/** Remove a key limit; throws `flow.key_limit_not_found` when there is none for the pattern. */
export async function removeKeyLimit(executor: Executor, input: { pattern: string }): Promise<KeyLimitRecord> {
  checkPattern(input?.pattern);
  return translating(async () => {
    const [row] = await keyLimitDelete.run(executor, { pattern: input.pattern });
    if (row === undefined)
      throw new RunledgerError("flow.key_limit_not_found", { details: { pattern: input.pattern } });
    return keyLimitFromRow(row);
  });
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
 * (default 100) scopes in use, busiest first, with the starts in their rate window at `now` (the
 * database's clock when omitted). For the CLI and the dashboard.
 */
export async function getFlowControlState(
  executor: Executor,
  options: { limit?: number; now?: Date } = {},
): Promise<FlowControlState> {
  const limit = options.limit ?? 100;
  if (!(isInt32(limit) && limit > 0 && limit <= 1000)) fail("job.invalid_pagination", { field: "limit" });
  if (options.now !== undefined && !isValidDate(options.now)) fail("job.invalid_pagination", { field: "now" });
  return translating(async () => {
    const jobTypes = [];
    for (const { job_type } of await flowControlledJobTypes.run(executor, {})) {
      const definition = await getJobDefinition(executor, job_type);
      if (definition !== null) jobTypes.push(definition);
    }
    const keys = await keyLimitList.run(executor, {});
    const scopes = await flowScopeUsage.run(executor, { limit, now: options.now });
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
  });
}
