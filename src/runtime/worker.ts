import * as v from "valibot";
import {
  defaultRetryDelayMs,
  type JobContext,
  JobFailure,
  type JobProgress,
  type RetryPolicy,
  WORKER_FAILURE_CODES,
} from "../core/index.ts";
import {
  CANCEL_CHANNEL,
  claimRunnableJobs,
  heartbeatJobs,
  JOBS_CHANNEL,
  type LeaseIdentity,
  type RunledgerDb,
  type RunnableJob,
  returnUnstartedClaims,
  type Subscription,
} from "../store/index.ts";
import type { JobsConfig } from "./config.ts";
import { type AbortReason, type JobEventInfo, RuntimeEvents } from "./events.ts";
import { createJobContext } from "./job-context.ts";
import { type RuntimeLoopExit, Waker } from "./loop.ts";
import type { JobRegistry, RegisteredHandler } from "./registry.ts";
import { type Finished, ResultRecorder } from "./results.ts";

export const SHUTDOWN_FAILURE_CODE = "job.worker_shutdown";
/** Reason recorded when a worker hands back jobs it claimed but never started. */
export const RETURNED_UNSTARTED = "WORKER_RETURNED_UNSTARTED";

interface InFlight {
  job: RunnableJob;
  lease: LeaseIdentity;
  /** Why the job was aborted, once it is. */
  abortReason?: AbortReason;
  /** Made when the handler first reads its signal (see `createJobContext`). */
  controller?: AbortController;
  /** Rejects the handler's race when the signal aborts (set while the handler runs). */
  rejectRun?: (reason: unknown) => void;
  startedAt: number;
  done: Promise<void>;
}

export interface WorkerOptions {
  db: RunledgerDb;
  registry: JobRegistry;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** Backoff for retryable failures without their own delay. Default: the spec's formula. */
  retryPolicy?: RetryPolicy;
}

/** What a drain left behind. */
export interface DrainReport {
  /** Jobs whose handlers were still running at the deadline; their signals were aborted. */
  abandoned: string[];
}

/**
 * The worker: claims due jobs up to free capacity, runs their handlers with a `JobContext`
 * whose signal aborts on timeout, cancellation, lease loss and shutdown, heartbeats every
 * running lease in one statement, and records successes in batches (one statement in flight
 * while the next batch accumulates). It wakes on NOTIFY and falls back to polling.
 */
export class Worker {
  readonly #db: RunledgerDb;
  readonly #registry: JobRegistry;
  readonly #config: JobsConfig;
  readonly #events: RuntimeEvents;
  readonly #results: ResultRecorder;
  readonly #inFlight = new Map<string, InFlight>();
  /** Claimed jobs waiting for a free slot: claiming ahead keeps a busy worker from paying a round trip per job. */
  #queue: RunnableJob[] = [];
  readonly #waker = new Waker();
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #subscriptions: Subscription[] = [];
  #claiming = true;
  #lastDrain: DrainReport = { abandoned: [] };
  /** How long `run` lets handlers finish after its signal aborts. */
  drainTimeoutMs = 30_000;

  constructor(options: WorkerOptions) {
    this.#db = options.db;
    this.#registry = options.registry;
    this.#config = options.config;
    this.#events = options.events ?? new RuntimeEvents();
    this.#results = new ResultRecorder(
      this.#db,
      this.#registry,
      this.#events,
      options.retryPolicy ?? ((input) => defaultRetryDelayMs(input.attempt, input.jobId)),
    );
  }

  /** Jobs whose handlers are running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Jobs claimed but waiting for a free slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** How many more jobs this worker will hold: free slots plus one batch waiting. */
  #room(): number {
    return this.#config.maxGlobalConcurrency + this.#config.claimBatchSize - this.#inFlight.size - this.#queue.length;
  }

  /**
   * Claim up to one batch (never more than free slots plus one batch waiting) and start as many
   * handlers as there are free slots. Returns how many jobs were claimed.
   */
  async runOnce(): Promise<number> {
    const types = this.#registry.registeredTypes();
    const limit = Math.min(this.#room(), this.#config.claimBatchSize);
    if (!this.#claiming || types.length === 0 || limit <= 0) return 0;
    const jobs = await claimRunnableJobs(this.#db, {
      workerId: this.#config.workerId,
      leaseSeconds: this.#config.leaseTtlSeconds,
      limit,
      jobTypes: types,
      markRunning: true,
    });
    this.#queue.push(...jobs);
    this.#pump();
    return jobs.length;
  }

  /** Start queued jobs while slots are free. */
  #pump(): void {
    while (this.#inFlight.size < this.#config.maxGlobalConcurrency && this.#queue.length > 0) {
      this.#start(this.#queue.shift()!);
    }
  }

  /** Run until `signal` aborts, then drain for at most `drainTimeoutMs`. */
  async run(signal: AbortSignal): Promise<RuntimeLoopExit> {
    const stop = () => this.#waker.stop();
    signal.addEventListener("abort", stop, { once: true });
    await this.#subscribe();
    this.#startHeartbeats();
    try {
      while (!signal.aborted) {
        let claimed = 0;
        let limit = 0;
        try {
          limit = Math.min(this.#room(), this.#config.claimBatchSize);
          claimed = await this.runOnce();
        } catch (error) {
          this.#events.emit("loop:error", { loop: "worker", error });
        }
        if (signal.aborted) break;
        // A full batch means more may be waiting: claim again at once while there is room.
        if (claimed > 0 && claimed === limit && this.#room() > 0) continue;
        await this.#waker.wait(this.#config.pollIntervalMs);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      this.#lastDrain = await this.drain(this.drainTimeoutMs);
    }
    return "shutdown";
  }

  /**
   * Stop claiming, let running handlers finish until the deadline, then abort the rest (their
   * attempts fail as retryable `job.worker_shutdown`), flush recorded results and unsubscribe.
   */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#claiming = false;
    this.#waker.stop();
    await this.#returnQueued();
    const deadline = new Promise<"deadline">((resolve) =>
      setTimeout(() => resolve("deadline"), Math.max(0, timeoutMs)).unref(),
    );
    const everything = Promise.all([...this.#inFlight.values()].map((entry) => entry.done)).then(() => "done" as const);
    const abandoned: string[] = [];
    if ((await Promise.race([everything, deadline])) === "deadline") {
      for (const entry of this.#inFlight.values()) {
        abandoned.push(entry.job.id);
        this.#abort(entry, "shutdown");
      }
      await Promise.all([...this.#inFlight.values()].map((entry) => entry.done));
    }
    await this.#results.flush();
    this.#stopHeartbeats();
    await Promise.all(this.#subscriptions.map((s) => s.unlisten().catch(() => {})));
    this.#subscriptions = [];
    return { abandoned };
  }

  /** What the drain at the end of `run` left behind. */
  get lastDrain(): DrainReport {
    return this.#lastDrain;
  }

  /** Give back jobs claimed but never started, so another worker can take them at once. */
  async #returnQueued(): Promise<void> {
    const queued = this.#queue.splice(0);
    if (queued.length === 0) return;
    try {
      await returnUnstartedClaims(
        this.#db,
        queued.map((job) => leaseOf(job)),
        { reason: RETURNED_UNSTARTED },
      );
    } catch (error) {
      // The reaper recovers them when their leases run out.
      this.#events.emit("loop:error", { loop: "worker", error });
    }
  }

  /** Wake the claim loop now (tests, or an application that knows work arrived). */
  wake(): void {
    this.#waker.wake();
  }

  async #subscribe(): Promise<void> {
    try {
      this.#subscriptions.push(
        // onListen fires on every (re)connection: re-poll for work announced while it was down.
        await this.#db.$runledger.listen(
          JOBS_CHANNEL,
          () => this.#waker.wake(),
          () => this.#waker.wake(),
        ),
        await this.#db.$runledger.listen(CANCEL_CHANNEL, (jobId) => {
          const entry = this.#inFlight.get(jobId);
          if (entry !== undefined) this.#abort(entry, "canceled");
          this.#queue = this.#queue.filter((job) => job.id !== jobId);
        }),
      );
    } catch (error) {
      // Polling still works without notifications.
      this.#events.emit("loop:error", { loop: "worker", error });
    }
  }

  #startHeartbeats(): void {
    const everyMs = Math.max(1, Math.floor(this.#config.leaseTtlSeconds / 3)) * 1000;
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), everyMs);
    this.#heartbeatTimer.unref();
  }

  #stopHeartbeats(): void {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  /** Renew every running lease in one statement; abort handlers whose lease was lost. */
  async #heartbeat(): Promise<void> {
    const entries = [...this.#inFlight.values()].filter((e) => e.abortReason === undefined);
    const queued = [...this.#queue];
    if (entries.length === 0 && queued.length === 0) return;
    try {
      const held = await heartbeatJobs(this.#db, [...entries.map((e) => e.lease), ...queued.map(leaseOf)], {
        leaseSeconds: this.#config.leaseTtlSeconds,
      });
      for (const entry of entries) {
        if (!held.has(entry.job.id) && this.#inFlight.has(entry.job.id)) this.#abort(entry, "lease_lost");
      }
      this.#queue = this.#queue.filter((job) => held.has(job.id) || !queued.includes(job));
    } catch (error) {
      this.#events.emit("loop:error", { loop: "worker", error });
    }
  }

  #abort(entry: InFlight, reason: AbortReason): void {
    if (entry.abortReason !== undefined) return;
    entry.abortReason = reason;
    entry.controller?.abort(reason);
    entry.rejectRun?.(reason);
    this.#events.emit("job:aborted", { ...info(entry), reason });
  }

  #start(job: RunnableJob): void {
    const lease = leaseOf(job);
    const entry = { job, lease, startedAt: performance.now() } as InFlight;
    this.#inFlight.set(job.id, entry);
    if (this.#events.has("job:claimed")) this.#events.emit("job:claimed", info(entry));
    entry.done = this.#execute(entry).finally(() => {
      this.#inFlight.delete(job.id);
      this.#pump();
      // Refill when the local queue runs low (not on every finished job).
      if (this.#queue.length <= this.#config.claimBatchSize / 2) this.#waker.wake();
    });
  }

  async #execute(entry: InFlight): Promise<void> {
    const { job } = entry;
    const timer = setTimeout(() => this.#abort(entry, "timeout"), Math.max(job.timeoutSeconds, 1) * 1000);
    let outcome: { ok: true; value: undefined | JobProgress } | { ok: false; failure: JobFailure };
    try {
      const registered = this.#registry.get(job.jobType);
      if (registered === undefined) {
        outcome = {
          ok: false,
          failure: JobFailure.terminal(
            WORKER_FAILURE_CODES.handlerNotRegistered,
            `No handler is registered for ${job.jobType}.`,
          ),
        };
      } else {
        outcome = await this.#runHandler(entry, registered);
      }
    } finally {
      clearTimeout(timer);
    }
    const reason = entry.abortReason;
    if (reason !== undefined) {
      // Canceled or lease lost: another party owns the job now; write nothing.
      if (reason === "canceled" || reason === "lease_lost") return;
      const failure =
        reason === "timeout"
          ? JobFailure.timeout(WORKER_FAILURE_CODES.timeoutExceeded, "Job exceeded the configured timeout.")
          : JobFailure.retryable(SHUTDOWN_FAILURE_CODE, "Worker shut down before the job finished.", {
              retryAfterMs: 1000,
            });
      await this.#results.failure(this.#finished(entry), failure);
      return;
    }
    if (outcome.ok) this.#results.success(this.#finished(entry), outcome.value);
    else await this.#results.failure(this.#finished(entry), outcome.failure);
  }

  async #runHandler(
    entry: InFlight,
    registered: RegisteredHandler,
  ): Promise<{ ok: true; value: undefined | JobProgress } | { ok: false; failure: JobFailure }> {
    let payload: unknown = entry.job.payload;
    if (registered.payloadSchema !== undefined) {
      const parsed = v.safeParse(registered.payloadSchema, payload);
      if (!parsed.success) {
        return {
          ok: false,
          failure: JobFailure.terminal("job.invalid_payload", "The job payload does not match its schema."),
        };
      }
      payload = parsed.output;
    }
    const context = this.#context(entry);
    // Settles the race when the signal aborts; cheaper per job than an abort listener.
    const abort = new Promise<never>((_, reject) => {
      entry.rejectRun = reject;
      if (entry.abortReason !== undefined) reject(entry.abortReason);
    });
    abort.catch(() => {});
    try {
      const value = await Promise.race([
        Promise.resolve().then(() => registered.handler.execute(context, payload)),
        abort,
      ]);
      return { ok: true, value: value ?? undefined };
    } catch (thrown) {
      return { ok: false, failure: JobFailure.from(thrown) };
    }
  }

  #finished(entry: InFlight): Finished {
    return {
      job: entry.job,
      lease: entry.lease,
      info: info(entry),
      durationMs: performance.now() - entry.startedAt,
      context: () => this.#context(entry),
    };
  }

  #context(entry: InFlight): JobContext {
    return createJobContext(this.#db, entry.job, entry.lease, () => signalOf(entry), this.#config.leaseTtlSeconds);
  }
}

function signalOf(entry: InFlight): AbortSignal {
  if (entry.controller === undefined) {
    entry.controller = new AbortController();
    if (entry.abortReason !== undefined) entry.controller.abort(entry.abortReason);
  }
  return entry.controller.signal;
}

function leaseOf(job: RunnableJob): LeaseIdentity {
  return { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: job.workerId! };
}

function info(entry: InFlight): JobEventInfo {
  return {
    jobId: entry.job.id,
    jobType: entry.job.jobType,
    runNumber: entry.job.runNumber,
    attempt: entry.job.attempt,
    workerId: entry.lease.workerId,
  };
}

/**
 * Low-level worker loop for custom orchestration: runs until `signal` aborts, drains, and
 * returns `"shutdown"`.
 */
export function runWorkerLoop(
  db: RunledgerDb,
  registry: JobRegistry,
  config: JobsConfig,
  signal: AbortSignal,
  options: { events?: RuntimeEvents; retryPolicy?: RetryPolicy; drainTimeoutMs?: number } = {},
): Promise<RuntimeLoopExit> {
  const worker = new Worker({ db, registry, config, events: options.events, retryPolicy: options.retryPolicy });
  if (options.drainTimeoutMs !== undefined) worker.drainTimeoutMs = options.drainTimeoutMs;
  return worker.run(signal);
}
