import { materializeDueSchedules, type RunledgerDb } from "../store/index.ts";
import type { JobsConfig } from "./config.ts";
import { RuntimeEvents } from "./events.ts";
import { type RuntimeLoopExit, tick, Waker } from "./loop.ts";

export interface SchedulerOptions {
  db: RunledgerDb;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** The scheduler's clock (UTC wall time); injectable for tests. */
  now?: () => Date;
}

/**
 * The scheduler: every `schedulePollIntervalSeconds`, turn each due schedule into one job and
 * advance its cursor. Any number of schedulers may run against one database: each slot fires
 * once.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #events: RuntimeEvents;
  readonly #waker = new Waker();

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#events = options.events ?? new RuntimeEvents();
  }

  /** One pass; returns how many jobs it materialized. */
  async runOnce(): Promise<number> {
    const now = this.#options.now?.() ?? new Date();
    const result = await materializeDueSchedules(this.#options.db, { now, limit: this.#options.config.claimBatchSize });
    for (const fired of result.fired) this.#events.emit("scheduler:fired", fired);
    for (const failed of result.failed) this.#events.emit("loop:error", { loop: "scheduler", error: failed.error });
    return result.fired.length;
  }

  run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    return tick(() => this.runOnce(), {
      intervalMs: this.#options.config.schedulePollIntervalSeconds * 1000,
      signal,
      waker: this.#waker,
      onError: (error) => this.#events.emit("loop:error", { loop: "scheduler", error }),
    });
  }
}

/** Low-level scheduler loop for custom orchestration. */
export function runSchedulerLoop(
  db: RunledgerDb,
  config: JobsConfig,
  signal: AbortSignal,
  options: { events?: RuntimeEvents; now?: () => Date } = {},
): Promise<RuntimeLoopExit> {
  return new Scheduler({ db, config, ...options }).run(signal);
}
