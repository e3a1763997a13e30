import type { RunledgerDb } from "../store/index.ts";
import { materializeDueSchedules } from "../store/worker.ts";
import type { JobsConfig } from "./config.ts";
import { RuntimeEvents } from "./events.ts";
import { type RuntimeLoopExit, tick, Waker } from "./loop.ts";
import type { LoopMonitor } from "./loop-monitor.ts";

export interface SchedulerOptions {
  db: RunledgerDb;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** Backoff and state-change reports of failing passes (the Supervisor gives one). */
  monitor?: LoopMonitor;
  /** The scheduler's clock; the database's when omitted. Tests inject one to set time instead of waiting. */
  now?: () => Date;
}

/**
 * The scheduler: every `schedulePollIntervalMs`, turn the due slots of each schedule into
 * jobs as its catch-up window and overlap policy say, and advance its cursor. Any number of
 * schedulers may run against one database: each slot fires once. A pass that stopped at its
 * limits with slots still due is followed by another at once.
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
    const now = this.#options.now?.();
    const result = await materializeDueSchedules(this.#options.db, { now, limit: this.#options.config.claimBatchSize });
    for (const fired of result.fired) this.#events.emit("scheduler:fired", fired);
    for (const skipped of result.skipped) this.#events.emit("scheduler:skipped", skipped);
    for (const failed of result.failed) this.#events.emit("loop:error", { loop: "scheduler", error: failed.error });
    if (result.more) this.#waker.wake();
    return result.fired.length;
  }

  run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    return tick(() => this.runOnce(), {
      intervalMs: this.#options.config.schedulePollIntervalMs,
      signal,
      waker: this.#waker,
      onError: (error) => this.#events.emit("loop:error", { loop: "scheduler", error }),
      monitor: this.#options.monitor,
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
