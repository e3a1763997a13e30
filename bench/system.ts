// The one interface every benchmarked system implements, so a scenario is written once and run
// against runledger, graphile-worker, pg-boss and the raw-SQL ceiling alike.

export const SYSTEM_NAMES = [
  "runledger",
  "graphile",
  "pgboss",
  "raw",
  "rawledger",
  "rawledger-min",
  "rawledger-hot",
  "baseline",
  "unprepared",
  "untraced",
  "otel",
] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/**
 * What runs without `--systems`. `unprepared` (runledger with `createDb(url, { pooled: true })`:
 * no named prepared statements, as behind PgBouncer in transaction mode) runs only when named,
 * for the paired cost of that setting; so do `untraced` (runledger with its telemetry entry points
 * compiled out) and `otel` (runledger with an OpenTelemetry SDK registered), for the paired cost
 * of the instrumentation (bench/telemetry-cost.ts). `rawledger`, `rawledger-hot` and `rawledger-min`
 * (raw SQL that keeps a ledger row per job, bench/systems/raw-ledger.ts) also run only when named.
 */
export const DEFAULT_SYSTEMS: readonly SystemName[] = ["runledger", "graphile", "pgboss", "raw", "baseline"];

/**
 * `baseline` is runledger as compiled elsewhere (another commit's `npm run bench` build, named by
 * `RUNLEDGER_BASELINE_BUILD`), run in the same rounds for paired before/after numbers.
 */
export const BASELINE_BUILD_VARIABLE = "RUNLEDGER_BASELINE_BUILD";

/** Called when a job's handler starts, with the sequence number the job was enqueued with. */
export type JobHandler = (seq: number) => void;

/** Called when a workflow step's handler starts. */
export type StepHandler = (run: number, step: string) => void;

/** Fan-out width of the workflow scenario's 1 → N → 1 DAG. */
export const FAN_OUT = 20;

/** The step keys of one workflow run: `root`, `fan0` … `fan19`, `join`. */
export function workflowSteps(): string[] {
  return ["root", ...Array.from({ length: FAN_OUT }, (_, k) => `fan${k}`), "join"];
}

export interface BenchSystem {
  readonly name: SystemName;
  /**
   * SQL returning one row with an integer column `n`: how many jobs (and workflow runs) are not
   * yet completed, whatever their state (queued, running, failed, retrying, blocked).
   */
  readonly pendingQuery: string;
  /**
   * Install the schema and anything else needed before jobs can be enqueued (not timed). Must be
   * idempotent: a processing run calls it again in the worker process after the load phase.
   */
  setup(): Promise<void>;
  /** Enqueue one job per sequence number with the system's batch API. */
  enqueueBatch(seqs: readonly number[]): Promise<void>;
  /** Enqueue one job with the system's single-job API. */
  enqueueOne(seq: number): Promise<void>;
  /** Start one worker running at most `concurrency` handlers at once; resolves once it is running. */
  startWorker(concurrency: number, handler: JobHandler): Promise<void>;
  /** Stop the worker, waiting for running handlers and pending completions. */
  stopWorker(): Promise<void>;
  /** Workflow support; absent for systems the workflow scenario skips. */
  readonly workflow?: {
    /** Start a worker for workflow steps (instead of `startWorker`). */
    startWorker(concurrency: number, onStep: StepHandler): Promise<void>;
    /** Enqueue run number `run` of the 1 → FAN_OUT → 1 DAG. */
    enqueueRun(run: number): Promise<void>;
  };
  /** runledger's flow control (the `flow-keys` and `fair` scenarios). */
  readonly flow?: {
    /** Enqueue one job per sequence number with the batch API, each with its concurrency key. */
    enqueueKeyedBatch(seqs: readonly number[], keyOf: (seq: number) => string): Promise<void>;
    /** Limit every key starting with `prefix` to `limit` running jobs. */
    limitKeys(prefix: string, limit: number): Promise<void>;
    /** Enqueue jobs of one organization: a batch, or one job. */
    enqueueBatchFor(organizationId: string, seqs: readonly number[]): Promise<void>;
    enqueueOneFor(organizationId: string, seq: number): Promise<void>;
    /** `startWorker` with or without fair claims across organizations (and another claim batch). */
    startWorker(concurrency: number, handler: JobHandler, fair: boolean, claimBatchSize?: number): Promise<void>;
  };
  /** The retention soak (runledger only): plain jobs and workflow runs, processed while swept. */
  readonly soak?: SoakSupport;
  /** Close every connection. */
  close(): Promise<void>;
}

/**
 * Called when a soak handler starts, with the job's key (a plain job's sequence number, or
 * `plainJobs + run × steps + step index`) and attempt; returns true to fail this attempt (retryably).
 */
export type SoakHandler = (key: number, attempt: number) => boolean;

export interface SoakSupport {
  /** Start one worker (with its retention sweep, `retentionSeconds` for every outcome). */
  startWorker(concurrency: number, retentionSeconds: number, handler: SoakHandler): Promise<void>;
  /** Enqueue plain jobs, one per key. */
  enqueueJobs(keys: readonly number[]): Promise<void>;
  /** Enqueue one 1 → FAN_OUT → 1 run whose steps have keys `firstKey …`. */
  enqueueRun(firstKey: number): Promise<void>;
  /** Rows the retention sweep deleted so far. */
  readonly sweptRows: number;
}
