import { JobFailure, WORKER_FAILURE_CODES } from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";
import { LEASE_EXPIRED_MESSAGE, type ReapedDeadLetter, reapExpiredLeases } from "../store/worker.ts";
import type { JobsConfig } from "./config.ts";
import { RuntimeEvents } from "./events.ts";
import { type RuntimeLoopExit, tick, Waker } from "./loop.ts";
import type { LoopMonitor } from "./loop-monitor.ts";
import type { JobRegistry } from "./registry.ts";
import { runHook } from "./results.ts";

const HOOK_CONCURRENCY = 8;
const HOOK_TIMEOUT_MS = 10_000;

export interface ReaperOptions {
  db: RunledgerDb;
  registry: JobRegistry;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** Backoff and state-change reports of failing passes (the Supervisor gives one). */
  monitor?: LoopMonitor;
}

/**
 * The reaper: every `reaperIntervalMs`, recover jobs whose lease ran out (their worker died
 * or stalled) and call the dead-letter hooks of those it dead-lettered.
 */
export class Reaper {
  readonly #options: ReaperOptions;
  readonly #events: RuntimeEvents;
  readonly #waker = new Waker();

  constructor(options: ReaperOptions) {
    this.#options = options;
    this.#events = options.events ?? new RuntimeEvents();
  }

  /** One pass; returns how many expired leases it handled. */
  async runOnce(): Promise<number> {
    const { db, config } = this.#options;
    const result = await reapExpiredLeases(db, {
      limit: config.claimBatchSize,
      retryDelayMs: config.reaperRetryDelayMs,
    });
    if (result.processed > 0 || result.deferred > 0) {
      this.#events.emit("reaper:reaped", {
        processed: result.processed,
        released: result.released,
        retried: result.retried,
        deadLettered: result.deadLettered.length,
        deferred: result.deferred,
      });
    }
    await this.#hooks(result.deadLettered);
    return result.processed;
  }

  run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    return tick(() => this.runOnce(), {
      intervalMs: this.#options.config.reaperIntervalMs,
      signal,
      waker: this.#waker,
      onError: (error) => this.#events.emit("loop:error", { loop: "reaper", error }),
      monitor: this.#options.monitor,
    });
  }

  async #hooks(records: ReapedDeadLetter[]): Promise<void> {
    const pending = records.filter((r) => this.#options.registry.get(r.jobType)?.handler.onDeadLetter !== undefined);
    for (let i = 0; i < pending.length; i += HOOK_CONCURRENCY) {
      await Promise.all(pending.slice(i, i + HOOK_CONCURRENCY).map((record) => this.#hook(record)));
    }
  }

  async #hook(record: ReapedDeadLetter): Promise<void> {
    const { handler } = this.#options.registry.get(record.jobType)!;
    const failure = JobFailure.leaseExpired(WORKER_FAILURE_CODES.leaseExpired, LEASE_EXPIRED_MESSAGE);
    const context = {
      jobId: record.jobId,
      jobType: record.jobType,
      organizationId: record.organizationId,
      runNumber: record.runNumber,
      attempt: record.attempt,
      maxAttempts: record.maxAttempts,
      workerId: "reaper",
      workflowRunId: null,
      workflowStepId: null,
      schedule: null,
      previousCheckpoint: null,
      signal: AbortSignal.timeout(HOOK_TIMEOUT_MS),
      progress: async () => {},
      heartbeat: async () => {},
      log: async () => {},
      checkpoint: async () => {},
    };
    await runHook(
      () =>
        handler.onDeadLetter!(context, record.payload, {
          failure,
          reason: "LEASE_EXPIRED",
          maxAttempts: record.maxAttempts,
        }),
      HOOK_TIMEOUT_MS,
      (error) => this.#events.emit("loop:error", { loop: "reaper", error }),
    );
  }
}

/** Low-level reaper loop for custom orchestration. */
export function runReaperLoop(
  db: RunledgerDb,
  registry: JobRegistry,
  config: JobsConfig,
  signal: AbortSignal,
  options: { events?: RuntimeEvents } = {},
): Promise<RuntimeLoopExit> {
  return new Reaper({ db, registry, config, events: options.events }).run(signal);
}
