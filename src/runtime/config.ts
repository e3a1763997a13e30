import {
  exceedsUtf8,
  isStorableText,
  MAX_IDENTIFIER_BYTES,
  MAX_TIMEOUT_SECONDS,
  newId,
  RunledgerError,
} from "../core/index.ts";
import { type ClaimFairness, DEFAULT_PURGE_BATCH, MAX_PURGE_BATCH } from "../store/index.ts";
import { MAX_CLAIM } from "../store/worker.ts";

/**
 * How a worker process runs. Build with `JobsConfig.fromEnv()` or `JobsConfig.from({...})`.
 *
 * One unit per kind of field, named in the field: how often a loop runs and how long something
 * waits (intervals, delays) are milliseconds, `…Ms`, like `retryDelayMs` and `shutdown(timeoutMs)`;
 * how long something lasts in the database (a lease, a retention age) is seconds, `…Seconds`,
 * like a job's `timeoutSeconds`. Environment variables keep the spec's names and units
 * (`JOBS_REAPER_INTERVAL_SECONDS` sets `reaperIntervalMs`).
 */
export interface JobsConfig {
  /** Identifies this process's leases. Default `worker-<uuidv7>` (`newId()`). */
  readonly workerId: string;
  /** How often the worker polls when no notification arrives. Default 500 ms, at least 1. */
  readonly pollIntervalMs: number;
  /** Most jobs claimed per round trip; also the scheduler's and reaper's batch size. Default 16. */
  readonly claimBatchSize: number;
  /** Lease length; heartbeats renew it every third of it. Default 60 s, at least 10. */
  readonly leaseTtlSeconds: number;
  /** Handlers running at once in this process. Default 32. */
  readonly maxGlobalConcurrency: number;
  /** How often the reaper looks for expired leases. Default 15,000 ms, at least 1,000. */
  readonly reaperIntervalMs: number;
  /** How often the scheduler looks for due schedules. Default 30,000 ms, at least 1,000. */
  readonly schedulePollIntervalMs: number;
  /** Delay before a job whose lease expired runs again. Default 30,000 ms, at least 1,000. */
  readonly reaperRetryDelayMs: number;
  /**
   * Share each claim across organizations (`organization`) or concurrency keys (`concurrencyKey`)
   * instead of strict claim order, so one tenant's backlog cannot starve another's few jobs.
   * A worker makes a fair claim (which ranks bounded windows of the queue) at most every 200 ms
   * and claims in strict order in between (README "Flow control"). Default: none.
   */
  readonly claimFairness?: ClaimFairness;
  /** How often the retention sweep runs; 0 turns it off, otherwise at least 1,000. Default 60,000 ms. */
  readonly retentionIntervalMs: number;
  /** How long a SUCCEEDED standalone job is kept after it finished; 0 keeps it forever. Default 7 days. */
  readonly retentionSucceededSeconds: number;
  /** How long a CANCELED standalone job is kept; 0 keeps it forever. Default 7 days. */
  readonly retentionCanceledSeconds: number;
  /** How long a DEAD_LETTERED standalone job is kept; 0 keeps it forever. Default 30 days. */
  readonly retentionDeadLetteredSeconds: number;
  /** How long a finished workflow run (with its steps and jobs) is kept; 0 keeps it forever. Default 30 days. */
  readonly retentionWorkflowRunSeconds: number;
  /** Rows the sweep deletes per transaction. Default 1,000, at most 10,000. */
  readonly retentionBatchSize: number;
}

const FAIRNESS: readonly ClaimFairness[] = ["organization", "concurrencyKey"];

const DAY = 86_400;

interface Field {
  env: string;
  key: Exclude<keyof JobsConfig, "workerId" | "claimFairness">;
  fallback: number;
  min: number;
  /** Values above it are lowered to it. */
  max?: number;
  /** The variable is in seconds and the field in milliseconds (the spec's variable names). */
  secondsInEnv?: true;
  /** 0 is kept (it turns the loop off); other values are raised to `min`. */
  zeroTurnsOff?: true;
}

const FIELDS: readonly Field[] = [
  { env: "JOBS_POLL_INTERVAL_MS", key: "pollIntervalMs", fallback: 500, min: 1 },
  { env: "JOBS_CLAIM_BATCH_SIZE", key: "claimBatchSize", fallback: 16, min: 1, max: MAX_CLAIM },
  { env: "JOBS_LEASE_TTL_SECONDS", key: "leaseTtlSeconds", fallback: 60, min: 10, max: MAX_TIMEOUT_SECONDS },
  { env: "JOBS_MAX_GLOBAL_CONCURRENCY", key: "maxGlobalConcurrency", fallback: 32, min: 1 },
  { env: "JOBS_REAPER_INTERVAL_SECONDS", key: "reaperIntervalMs", fallback: 15_000, min: 1000, secondsInEnv: true },
  {
    env: "JOBS_SCHEDULE_POLL_INTERVAL_SECONDS",
    key: "schedulePollIntervalMs",
    fallback: 30_000,
    min: 1000,
    secondsInEnv: true,
  },
  { env: "JOBS_REAPER_RETRY_DELAY_MS", key: "reaperRetryDelayMs", fallback: 30_000, min: 1000 },
  {
    env: "JOBS_RETENTION_INTERVAL_SECONDS",
    key: "retentionIntervalMs",
    fallback: 60_000,
    min: 1000,
    secondsInEnv: true,
    zeroTurnsOff: true,
  },
  { env: "JOBS_RETENTION_SUCCEEDED_SECONDS", key: "retentionSucceededSeconds", fallback: 7 * DAY, min: 0 },
  { env: "JOBS_RETENTION_CANCELED_SECONDS", key: "retentionCanceledSeconds", fallback: 7 * DAY, min: 0 },
  { env: "JOBS_RETENTION_DEAD_LETTERED_SECONDS", key: "retentionDeadLetteredSeconds", fallback: 30 * DAY, min: 0 },
  { env: "JOBS_RETENTION_WORKFLOW_RUN_SECONDS", key: "retentionWorkflowRunSeconds", fallback: 30 * DAY, min: 0 },
  {
    env: "JOBS_RETENTION_BATCH_SIZE",
    key: "retentionBatchSize",
    fallback: DEFAULT_PURGE_BATCH,
    min: 1,
    max: MAX_PURGE_BATCH,
  },
];

/** The longest a Node.js timer can wait, in ms: the ceiling of every millisecond setting. */
const MAX = 2_147_483_647;

function clamp(field: Field, value: number): number {
  if (field.zeroTurnsOff && value <= 0) return 0;
  return Math.min(field.max ?? MAX, Math.max(field.min, value));
}

/** Fields renamed when every interval became milliseconds: named in the error a stale caller gets. */
const RENAMED: Readonly<Record<string, string>> = {
  reaperIntervalSeconds: "reaperIntervalMs",
  schedulePollIntervalSeconds: "schedulePollIntervalMs",
  retentionIntervalSeconds: "retentionIntervalMs",
};

function defaultWorkerId(): string {
  return `worker-${newId()}`;
}

/**
 * What is wrong with a worker id named `name` (`JOBS_WORKER_ID`, `workerId`), or undefined: it goes
 * onto every leased row and event, so it is refused here, at start-up, rather than by each claim.
 */
export function workerIdProblem(workerId: unknown, name: string): string | undefined {
  if (typeof workerId !== "string" || workerId.trim() === "") return `${name} must not be blank`;
  if (!isStorableText(workerId)) return `${name} must not contain NUL characters or unpaired surrogates`;
  if (exceedsUtf8(workerId, MAX_IDENTIFIER_BYTES)) return `${name} must be at most ${MAX_IDENTIFIER_BYTES} bytes`;
  return undefined;
}

/** `config.invalid` unless `config.workerId` is a worker id a claim accepts. */
export function checkWorkerId(config: Pick<JobsConfig, "workerId">): void {
  const problem = workerIdProblem(config?.workerId, "workerId");
  if (problem !== undefined) throw invalidConfig([problem]);
}

/** `config.invalid`, its message naming every bad variable or field ("JOBS_POLL_INTERVAL_MS must be …"). */
function invalidConfig(problems: string[]): RunledgerError {
  return new RunledgerError("config.invalid", { reason: `${problems.join("; ")}.`, details: { problems } });
}

/** Runtime configuration with the spec's defaults and clamps. */
export const JobsConfig = {
  /** Every environment variable `fromEnv` reads. */
  variables: ["JOBS_WORKER_ID", ...FIELDS.map((f) => f.env), "JOBS_CLAIM_FAIRNESS"] as const,

  /**
   * Read `JOBS_*` variables. Unset or blank values take the default; values below the minimum
   * are raised to it. A value that is not a whole number is an error naming every bad variable
   * (`config.invalid`), never a silent default.
   */
  fromEnv(env: Record<string, string | undefined> = process.env): JobsConfig {
    const values: Record<string, number> = {};
    const problems: string[] = [];
    for (const field of FIELDS) {
      const raw = env[field.env]?.trim();
      if (raw === undefined || raw === "") {
        values[field.key] = field.fallback;
        continue;
      }
      if (!/^-?\d+$/.test(raw) || Math.abs(Number(raw)) > MAX) {
        problems.push(`${field.env} must be a whole number`);
        continue;
      }
      values[field.key] = clamp(field, Number(raw) * (field.secondsInEnv ? 1000 : 1));
    }
    const fairness = env.JOBS_CLAIM_FAIRNESS?.trim();
    if (fairness && !FAIRNESS.includes(fairness as ClaimFairness)) {
      problems.push("JOBS_CLAIM_FAIRNESS must be organization or concurrencyKey");
    }
    const workerId = env.JOBS_WORKER_ID?.trim();
    const workerProblem = workerId ? workerIdProblem(workerId, "JOBS_WORKER_ID") : undefined;
    if (workerProblem !== undefined) problems.push(workerProblem);
    if (problems.length > 0) throw invalidConfig(problems);
    return Object.freeze({
      workerId: workerId ? workerId : defaultWorkerId(),
      ...values,
      ...(fairness ? { claimFairness: fairness } : {}),
    } as unknown as JobsConfig);
  },

  /** Build a config in code: the defaults, overridden and clamped like `fromEnv`. */
  from(overrides: Partial<JobsConfig> = {}): JobsConfig {
    const config: Record<string, unknown> = { workerId: overrides.workerId?.trim() || defaultWorkerId() };
    const problems: string[] = [];
    for (const [old, now] of Object.entries(RENAMED)) {
      if (old in overrides) problems.push(`${old} is now ${now} (milliseconds)`);
    }
    const workerProblem = workerIdProblem(config.workerId, "workerId");
    if (workerProblem !== undefined) problems.push(workerProblem);
    for (const field of FIELDS) {
      const value = overrides[field.key] ?? field.fallback;
      if (!Number.isInteger(value) || value > MAX) problems.push(`${field.key} must be a whole number`);
      config[field.key] = clamp(field, value);
    }
    if (overrides.claimFairness !== undefined) {
      if (!FAIRNESS.includes(overrides.claimFairness))
        problems.push("claimFairness must be organization or concurrencyKey");
      config.claimFairness = overrides.claimFairness;
    }
    if (problems.length > 0) throw invalidConfig(problems);
    return Object.freeze(config as unknown as JobsConfig);
  },
};
