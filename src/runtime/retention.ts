import { ALL_ORGANIZATIONS, type TerminalJobStatus } from "../core/index.ts";
import { purgeFinished, purgeWorkflowRuns, type RunledgerDb } from "../store/index.ts";
import type { JobsConfig } from "./config.ts";
import { RuntimeEvents } from "./events.ts";
import { type RuntimeLoopExit, tick, Waker } from "./loop.ts";

/** Batches one pass deletes per outcome before it yields to the next tick (which comes at once). */
const BATCHES_PER_PASS = 50;

export interface RetentionOptions {
  db: RunledgerDb;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** The clock retention ages count back from; default the database's. */
  now?: () => Date;
}

/** What one retention pass deleted. */
export interface RetentionSweep {
  jobs: number;
  workflowRuns: number;
  /** Every row deleted: jobs, their ledger and logs, runs, steps, edges and mutations. */
  rows: number;
}

/**
 * The retention sweep: every `retentionIntervalSeconds`, delete standalone jobs and workflow runs
 * that finished longer ago than their outcome's retention, in short transactions. Leaderless: each
 * process sweeps, and `SKIP LOCKED` splits the rows between them; nothing live is ever touched.
 */
export class RetentionSweeper {
  readonly #options: RetentionOptions;
  readonly #events: RuntimeEvents;
  readonly #waker = new Waker();

  constructor(options: RetentionOptions) {
    this.#options = options;
    this.#events = options.events ?? new RuntimeEvents();
  }

  /** One pass over every outcome with a retention; returns what it deleted. */
  async runOnce(): Promise<RetentionSweep> {
    const { db, config } = this.#options;
    const now = this.#options.now?.();
    const batchSize = config.retentionBatchSize;
    const limit = batchSize * BATCHES_PER_PASS;
    const sweep: RetentionSweep = { jobs: 0, workflowRuns: 0, rows: 0 };
    let more = false;
    // Outcomes kept equally long share a pass (one walk of the finished-jobs index).
    const byAge = new Map<number, TerminalJobStatus[]>();
    const ages: [TerminalJobStatus, number][] = [
      ["SUCCEEDED", config.retentionSucceededSeconds],
      ["CANCELED", config.retentionCanceledSeconds],
      ["DEAD_LETTERED", config.retentionDeadLetteredSeconds],
    ];
    for (const [status, seconds] of ages) if (seconds > 0) byAge.set(seconds, [...(byAge.get(seconds) ?? []), status]);
    // Standalone jobs and workflow runs are disjoint rows: swept side by side (two connections),
    // so a run backlog never holds up the jobs' pass or the other way round.
    const jobs = async () => {
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
    };
    const runs = async () => {
      if (config.retentionWorkflowRunSeconds === 0) return;
      // A run is ~20 rows and more: a run budget of a twentieth keeps a pass about as long.
      const runLimit = Math.max(1, Math.floor(limit / 20));
      const purged = await purgeWorkflowRuns(db, {
        scope: ALL_ORGANIZATIONS,
        olderThan: config.retentionWorkflowRunSeconds * 1000,
        batchSize,
        limit: runLimit,
        now,
      });
      sweep.workflowRuns += purged.runs;
      sweep.rows +=
        purged.runs +
        purged.steps +
        purged.edges +
        purged.mutations +
        purged.jobs +
        purged.attempts +
        purged.events +
        purged.logs +
        purged.deadLetters;
      more ||= purged.runs >= runLimit;
    };
    const failed = (await Promise.allSettled([jobs(), runs()])).find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    if (sweep.rows > 0) this.#events.emit("retention:purged", sweep);
    // A backlog left (retention just turned on, or a burst): go on without waiting the interval.
    if (more) this.#waker.wake();
    return sweep;
  }

  run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    return tick(() => this.runOnce(), {
      intervalMs: this.#options.config.retentionIntervalSeconds * 1000,
      signal,
      waker: this.#waker,
      onError: (error) => this.#events.emit("loop:error", { loop: "retention", error }),
    });
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
