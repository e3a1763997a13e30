import { ALL_ORGANIZATIONS, TERMINAL_JOB_STATUSES, type TerminalJobStatus } from "../core/index.ts";
import { purgeFinished, purgeWorkflowRuns, type RunledgerDb } from "../store/index.ts";
import type { JobsConfig } from "./config.ts";
import { RuntimeEvents } from "./events.ts";
import { type RuntimeLoopExit, tick, Waker } from "./loop.ts";
import type { LoopMonitor } from "./loop-monitor.ts";

/** Batches one pass deletes per outcome before it yields to the next tick (which comes at once). */
const BATCHES_PER_PASS = 50;
/** Runs one pass deletes before it yields (a 1→20→1 run is ~100 rows with its jobs' ledger). */
const RUNS_PER_PASS = 500;

export interface RetentionOptions {
  db: RunledgerDb;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** The clock retention ages count back from; default the database's. */
  now?: () => Date;
  /** Backoff and state-change reports of the jobs sweep (the Supervisor gives one, `retention`). */
  monitor?: LoopMonitor;
  /** The same for the workflow runs sweep (`retention.runs`). */
  runsMonitor?: LoopMonitor;
}

/** What one retention pass deleted. */
export interface RetentionSweep {
  jobs: number;
  workflowRuns: number;
  /** Every row deleted: jobs, their ledger and logs, runs, steps, edges and mutations. */
  rows: number;
}

interface Pass {
  sweep: RetentionSweep;
  /** The pass stopped at its bound: a backlog is left. */
  more: boolean;
}

/**
 * The retention sweep: every `retentionIntervalMs`, delete standalone jobs and workflow runs
 * that finished longer ago than their outcome's retention, in short transactions. Leaderless: each
 * process sweeps, and `SKIP LOCKED` splits the rows between them; nothing live is ever touched.
 * Standalone jobs and runs are disjoint rows, swept by two loops side by side (two connections at
 * most), so a backlog of one never holds up the other.
 */
export class RetentionSweeper {
  readonly #options: RetentionOptions;
  readonly #events: RuntimeEvents;
  readonly #jobsWaker = new Waker();
  readonly #runsWaker = new Waker();

  constructor(options: RetentionOptions) {
    this.#options = options;
    this.#events = options.events ?? new RuntimeEvents();
  }

  /** One pass over every outcome with a retention (jobs and runs side by side); returns what it deleted. */
  async runOnce(): Promise<RetentionSweep> {
    const [jobs, runs] = await Promise.all([this.#jobsPass(), this.#runsPass()]);
    return {
      jobs: jobs.sweep.jobs,
      workflowRuns: runs.sweep.workflowRuns,
      rows: jobs.sweep.rows + runs.sweep.rows,
    };
  }

  async run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    const intervalMs = this.#options.config.retentionIntervalMs;
    const onError = (error: unknown) => this.#events.emit("loop:error", { loop: "retention", error });
    const loop = (pass: () => Promise<Pass>, waker: Waker, monitor: LoopMonitor | undefined) =>
      tick(
        async () => {
          // A backlog left (retention just turned on, or a burst): go on without waiting the interval.
          if ((await pass()).more) waker.wake();
        },
        { intervalMs, signal, waker, onError, monitor },
      );
    const [jobs] = await Promise.all([
      loop(() => this.#jobsPass(), this.#jobsWaker, this.#options.monitor),
      loop(() => this.#runsPass(), this.#runsWaker, this.#options.runsMonitor),
    ]);
    return jobs;
  }

  async #jobsPass(): Promise<Pass> {
    const { db, config } = this.#options;
    const now = this.#options.now?.();
    const batchSize = config.retentionBatchSize;
    const limit = batchSize * BATCHES_PER_PASS;
    const sweep: RetentionSweep = { jobs: 0, workflowRuns: 0, rows: 0 };
    let more = false;
    // Outcomes kept equally long share a pass (one walk of the finished-jobs index).
    const byAge = new Map<number, TerminalJobStatus[]>();
    const ages: Record<TerminalJobStatus, number> = {
      SUCCEEDED: config.retentionSucceededSeconds,
      DEAD_LETTERED: config.retentionDeadLetteredSeconds,
      CANCELED: config.retentionCanceledSeconds,
    };
    for (const status of TERMINAL_JOB_STATUSES) {
      const seconds = ages[status];
      if (seconds > 0) byAge.set(seconds, [...(byAge.get(seconds) ?? []), status]);
    }
    for (const [seconds, statuses] of byAge) {
      const purged = await purgeFinished(db, {
        scope: ALL_ORGANIZATIONS,
        statuses,
        olderThan: seconds * 1000,
        batchSize,
        limit,
        now,
      });
      sweep.jobs += purged.jobs;
      sweep.rows += purged.jobs + purged.attempts + purged.events + purged.logs + purged.deadLetters;
      more ||= purged.jobs >= limit;
    }
    this.#report(sweep);
    return { sweep, more };
  }

  async #runsPass(): Promise<Pass> {
    const { db, config } = this.#options;
    const sweep: RetentionSweep = { jobs: 0, workflowRuns: 0, rows: 0 };
    if (config.retentionWorkflowRunSeconds === 0) return { sweep, more: false };
    const purged = await purgeWorkflowRuns(db, {
      scope: ALL_ORGANIZATIONS,
      olderThan: config.retentionWorkflowRunSeconds * 1000,
      batchSize: config.retentionBatchSize,
      limit: RUNS_PER_PASS,
      now: this.#options.now?.(),
    });
    sweep.workflowRuns = purged.runs;
    sweep.rows =
      purged.runs +
      purged.steps +
      purged.edges +
      purged.mutations +
      purged.jobs +
      purged.attempts +
      purged.events +
      purged.logs +
      purged.deadLetters;
    this.#report(sweep);
    return { sweep, more: purged.runs >= RUNS_PER_PASS };
  }

  #report(sweep: RetentionSweep): void {
    if (sweep.rows > 0) this.#events.emit("retention:purged", sweep);
  }
}

/** Low-level retention loop for custom orchestration. */
export function runRetentionLoop(
  db: RunledgerDb,
  config: JobsConfig,
  signal: AbortSignal,
  options: { events?: RuntimeEvents; now?: () => Date } = {},
): Promise<RuntimeLoopExit> {
  return new RetentionSweeper({ db, config, events: options.events, now: options.now }).run(signal);
}
