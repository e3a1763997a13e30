import {
  defaultRetryDelayMs,
  JobFailure,
  type JobProgress,
  type RetryPolicy,
  RunledgerError,
  WORKER_FAILURE_CODES,
} from "../core/index.ts";
import {
  activeMeter,
  activeTracer,
  CANCEL_CHANNEL,
  canceledJobIds,
  JOBS_CHANNEL,
  type RunledgerDb,
  type Subscription,
} from "../store/index.ts";
import { claimRunnableJobs, claimSize, type RunnableJob, returnUnstartedClaims } from "../store/worker.ts";
import { checkWorkerId, type JobsConfig } from "./config.ts";
import { type AbortReason, RuntimeEvents } from "./events.ts";
import { LeaseRenewal } from "./lease-renewal.ts";
import { type RuntimeLoopExit, Waker } from "./loop.ts";
import type { LoopMonitor } from "./loop-monitor.ts";
import type { JobRegistry } from "./registry.ts";
import { ResultRecorder } from "./results.ts";
import { invokeHandler, Running } from "./running.ts";
import { endAttempt, recordReceive, type SpanRelationship, startProcessSpan } from "./telemetry.ts";

export { Running } from "./running.ts";

/** Least time between two fair claims of one worker (see `JobsConfig.claimFairness`). */
const FAIR_CLAIM_INTERVAL_MS = 200;

/** Reason recorded when a worker hands back jobs it claimed but never started. */
export const RETURNED_UNSTARTED = "WORKER_RETURNED_UNSTARTED";

/** How often running jobs are checked against their deadlines. */
const TIMEOUT_SWEEP_MS = 250;

export interface WorkerOptions {
  db: RunledgerDb;
  registry: JobRegistry;
  config: JobsConfig;
  events?: RuntimeEvents;
  /** Backoff for retryable failures without their own delay. Default: the spec's formula. */
  retryPolicy?: RetryPolicy;
  /** Backoff and state-change reports of failing claims (the Supervisor gives one). */
  monitor?: LoopMonitor;
  /** Backoff and state-change reports of failing heartbeats. */
  heartbeatMonitor?: LoopMonitor;
  /** How processing spans relate to the enqueue's. Default `"link"`. */
  spanRelationship?: SpanRelationship;
}

/** What a drain left behind. */
export interface DrainReport {
  /** Jobs whose handlers were still running at the deadline; their signals were aborted. */
  abandoned: string[];
}

/**
 * The worker: claims due jobs up to free capacity, runs their handlers with a `JobContext` whose
 * signal aborts on timeout, cancellation, lease loss and shutdown, heartbeats every running lease
 * in one statement, and records successes in batches (one statement in flight while the next
 * batch accumulates). It wakes on NOTIFY and falls back to polling.
 *
 * Backpressure: it never holds more than `maxGlobalConcurrency + 2 × claimBatchSize` jobs
 * claimed, running or finished but not yet recorded (see `#claimLimit`), so a slow database
 * slows the claims down instead of letting leases run out under finished work.
 *
 * Per job the worker allocates a `Running`, a context and the handler's promise: no timer (one
 * sweep checks every deadline), no race against an abort promise (an aborted job is let go of
 * and its result ignored), no event objects nobody listens to.
 */
export class Worker {
  readonly #db: RunledgerDb;
  readonly #registry: JobRegistry;
  readonly #config: JobsConfig;
  readonly #events: RuntimeEvents;
  readonly #results: ResultRecorder;
  readonly #inFlight = new Map<string, Running>();
  /** Claimed jobs waiting for a free slot: claiming ahead keeps a busy worker from paying a round trip per job. */
  #queue: RunnableJob[] = [];
  readonly #waker = new Waker();
  /** Cuts a claim backoff short when the listener reconnects: the database is back. */
  readonly #reconnected = new Waker();
  readonly #monitor: LoopMonitor | undefined;
  readonly #heartbeatMonitor: LoopMonitor | undefined;
  readonly #spanRelationship: SpanRelationship;
  /** Whether the notification listener is (last known to be) connected; undefined before it first is. */
  #listening: boolean | undefined;
  /** Renews the leases of running and queued jobs (see `#startHeartbeats`); stopped when a drain ends. */
  #heartbeats: LeaseRenewal<RunnableJob> | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #subscriptions: Subscription[] = [];
  #cancelChecks: Promise<void> = Promise.resolve();
  #claiming = true;
  /** Whether flow control was configured at the last claim (the claim keeps it current). */
  readonly #flowMemo = { active: false };
  #fairAt = 0;
  #lastDrain: DrainReport = { abandoned: [] };
  /** Resolves a drain waiting for the last running handler. */
  #idle: (() => void) | undefined;
  /** How long `run` lets handlers finish after its signal aborts. */
  drainTimeoutMs = 30_000;
  /** Moves the deadline of the drain in progress closer (see `shortenDrain`). */
  #shortenDeadline: ((timeoutMs: number) => void) | undefined;

  constructor(options: WorkerOptions) {
    this.#db = options.db;
    this.#registry = options.registry;
    checkWorkerId(options.config);
    this.#config = options.config;
    this.#events = options.events ?? new RuntimeEvents();
    this.#monitor = options.monitor;
    this.#heartbeatMonitor = options.heartbeatMonitor;
    this.#spanRelationship = options.spanRelationship ?? "link";
    this.#results = new ResultRecorder(
      this.#db,
      this.#registry,
      this.#events,
      options.retryPolicy ?? ((input) => defaultRetryDelayMs(input.attempt, input.jobId)),
      this.#config.leaseTtlSeconds,
      // Room for claims again: a refill may be due.
      () => this.#wakeForRoom(),
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

  /** Whether it has stopped claiming (a drain started). */
  get draining(): boolean {
    return !this.#claiming;
  }

  /**
   * Whether the notification listener is connected, as last known: true once it listens, false
   * after a claim failed to reach the database until it listens again; undefined before it first
   * listens (or when notifications are unavailable).
   */
  get listenerConnected(): boolean | undefined {
    return this.#listening;
  }

  /**
   * How many jobs the next claim should ask for. Two bounds: running and queued jobs stay within
   * `maxGlobalConcurrency + claimBatchSize` (at most one batch waits in the local queue), and
   * with results not yet recorded within `maxGlobalConcurrency + 2 × claimBatchSize` (one batch
   * can be recorded while the next runs; beyond that a slow database slows the claims). Nothing
   * while that would be less than half a batch with jobs still queued, so a busy worker makes few
   * large claims rather than many small ones. Rounded down to a claim size (less than an eighth less),
   * whose statement the database plans once rather than on every claim (see `claimSize`).
   */
  #claimLimit(): number {
    const { maxGlobalConcurrency: concurrency, claimBatchSize: batch } = this.#config;
    const held = this.#inFlight.size + this.#queue.length;
    const limit = Math.min(
      batch,
      concurrency + batch - held,
      concurrency + 2 * batch - held - this.#results.unrecorded,
    );
    if (this.#queue.length > 0 && limit < batch / 2) return 0;
    return claimSize(limit);
  }

  /**
   * Claim up to one batch (see `#claimLimit`) and start as many handlers as there are free slots.
   * Returns how many jobs were claimed.
   */
  async runOnce(): Promise<number> {
    const limit = this.#claimLimit();
    if (!this.#claiming || limit <= 0) return 0;
    const types = this.#registry.registeredTypes();
    if (types.length === 0) return 0;
    // A fair claim costs more than a strict one (it ranks windows of the queue), so a worker makes
    // one at most every FAIR_CLAIM_INTERVAL_MS and claims in strict order in between; the fair
    // claim's jobs go to the front of the queue. The memo carries its sweep from claim to claim.
    const fair = this.#config.claimFairness !== undefined && Date.now() - this.#fairAt >= FAIR_CLAIM_INTERVAL_MS;
    if (fair) this.#fairAt = Date.now();
    const meter = activeMeter();
    const startedAt = meter === undefined ? 0 : performance.now();
    let jobs: RunnableJob[];
    try {
      jobs = await claimRunnableJobs(this.#db, {
        workerId: this.#config.workerId,
        leaseSeconds: this.#config.leaseTtlSeconds,
        limit,
        jobTypes: types,
        markRunning: true,
        fairness: fair ? this.#config.claimFairness : undefined,
        flowMemo: this.#flowMemo,
      });
    } catch (error) {
      if (meter !== undefined)
        recordReceive(meter, startedAt, [], (error as { code?: string }).code ?? "db.query_failed");
      throw error;
    }
    if (meter !== undefined) recordReceive(meter, startedAt, jobs);
    if (fair) this.#queue.unshift(...jobs);
    else for (const job of jobs) this.#queue.push(job);
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
    const stop = () => {
      this.#waker.stop();
      this.#reconnected.stop();
    };
    signal.addEventListener("abort", stop, { once: true });
    await this.#subscribe();
    this.#startHeartbeats();
    try {
      while (!signal.aborted) {
        let claimed = 0;
        let limit = 0;
        let backoffMs: number | undefined;
        try {
          limit = this.#claimLimit();
          claimed = await this.runOnce();
          // A pass held back by backpressure sent nothing, so it says nothing about the database.
          if (limit > 0) {
            if (this.#monitor?.failing) this.#heartbeats?.wake(); // the database is back: renew leases now
            this.#monitor?.succeeded();
          }
        } catch (error) {
          this.#events.emit("loop:error", { loop: "worker", error });
          if ((error as { code?: unknown }).code === "db.connection_failed") this.#listening &&= false;
          backoffMs = this.#monitor?.failed(error);
        }
        if (signal.aborted) break;
        if (backoffMs !== undefined) {
          // Finished handlers wake the claim loop; only a reconnected listener may cut this short.
          await this.#reconnected.wait(backoffMs);
          continue;
        }
        // A full batch means more may be waiting: claim again at once while there is room.
        if (claimed > 0 && claimed === limit && this.#claimLimit() > 0) continue;
        await this.#waker.wait(this.#config.pollIntervalMs);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      this.#lastDrain = await this.drain(this.drainTimeoutMs);
    }
    return "shutdown";
  }

  /**
   * Stop claiming, let running handlers finish until the deadline, then abort the rest and report
   * them (`abandoned`, and one `loop:error` with `runtime.shutdown_timeout`), flush recorded
   * results and unsubscribe. Nothing is written for an abandoned attempt: its lease runs out and
   * the reaper retries or dead-letters the job.
   */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#claiming = false;
    this.#waker.stop();
    await this.#returnQueued();
    const abandoned: string[] = [];
    if (this.#inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"deadline">((resolve) => {
        const endsAt = Date.now() + timeoutMs;
        timer = setTimeout(() => resolve("deadline"), Math.max(0, timeoutMs));
        this.#shortenDeadline = (shorter) => {
          if (Date.now() + shorter >= endsAt) return;
          clearTimeout(timer);
          timer = setTimeout(() => resolve("deadline"), Math.max(0, shorter));
        };
      });
      const idle = new Promise<"idle">((resolve) => {
        this.#idle = () => resolve("idle");
      });
      if ((await Promise.race([idle, deadline])) === "deadline") {
        for (const entry of [...this.#inFlight.values()]) {
          abandoned.push(entry.job.id);
          this.#abort(entry, "shutdown");
        }
        this.#events.emit("loop:error", {
          loop: "worker",
          error: new RunledgerError("runtime.shutdown_timeout", {
            details: { timeoutMs, abandoned: abandoned.length },
          }),
        });
      }
      clearTimeout(timer);
      this.#idle = undefined;
      this.#shortenDeadline = undefined;
    }
    await this.#results.flush();
    this.#stopTimers();
    await Promise.all(this.#subscriptions.map((s) => s.unlisten().catch(() => {})));
    this.#subscriptions = [];
    return { abandoned };
  }

  /** Let running handlers have at most `timeoutMs` more, in the drain in progress or the next one. */
  shortenDrain(timeoutMs: number): void {
    this.drainTimeoutMs = Math.min(this.drainTimeoutMs, timeoutMs);
    this.#shortenDeadline?.(timeoutMs);
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
      await returnUnstartedClaims(this.#db, { leases: queued, reason: RETURNED_UNSTARTED });
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
    if (!this.#db.$runledger.notifications) {
      // A pooled handle without a direct LISTEN connection: say so once, then poll.
      this.#events.emit("worker:polling", {
        reason: "no_listen_connection",
        pollIntervalMs: this.#config.pollIntervalMs,
      });
      return;
    }
    try {
      this.#subscriptions.push(
        // onListen fires on every (re)connection: re-poll for work announced while it was down.
        await this.#db.$runledger.listen(
          JOBS_CHANNEL,
          () => this.#waker.wake(),
          () => {
            if (this.#listening === false) {
              this.#reconnected.wake();
              this.#heartbeats?.wake();
            }
            this.#listening = true;
            this.#waker.wake();
          },
        ),
        await this.#db.$runledger.listen(CANCEL_CHANNEL, (jobId) => this.#cancelAnnounced(jobId)),
      );
    } catch (error) {
      // Polling still works without notifications.
      this.#events.emit("loop:error", { loop: "worker", error });
    }
  }

  /**
   * A cancel notification names a job; abort it only once the database says it is canceled (any
   * database user can send one). Checks run one after another, in the order announced; when a
   * check fails, the next heartbeat finds the lease gone and aborts the handler anyway.
   */
  #cancelAnnounced(jobId: string): void {
    if (!this.#inFlight.has(jobId) && !this.#queue.some((job) => job.id === jobId)) return;
    this.#cancelChecks = this.#cancelChecks.then(async () => {
      try {
        if (!(await canceledJobIds(this.#db, [jobId])).has(jobId)) return;
      } catch (error) {
        this.#events.emit("loop:error", { loop: "worker", error });
        return;
      }
      const entry = this.#inFlight.get(jobId);
      if (entry !== undefined) this.#abort(entry, "canceled");
      this.#queue = this.#queue.filter((job) => job.id !== jobId);
    });
  }

  #startHeartbeats(): void {
    this.#heartbeats = new LeaseRenewal<RunnableJob>({
      db: this.#db,
      leaseSeconds: this.#config.leaseTtlSeconds,
      events: this.#events,
      monitor: this.#heartbeatMonitor,
      holder: {
        leases: () => [
          ...[...this.#inFlight.values()].filter((e) => e.abortReason === undefined).map((e) => e.job),
          ...this.#queue,
        ],
        // A running job whose lease is gone is aborted; a queued one is let go of.
        renewed: (renewed, held) => {
          for (const job of renewed) {
            if (held.has(job.id)) continue;
            const entry = this.#inFlight.get(job.id);
            if (entry !== undefined && entry.job === job && !entry.settled) this.#abort(entry, "lease_lost");
          }
          this.#queue = this.#queue.filter((job) => held.has(job.id) || !renewed.includes(job));
        },
      },
    }).start();
  }

  #stopTimers(): void {
    this.#heartbeats?.stop();
    clearInterval(this.#sweepTimer);
    this.#heartbeats = undefined;
    this.#sweepTimer = undefined;
  }

  /** Abort every handler past its deadline. */
  #sweep(): void {
    const now = performance.now();
    for (const entry of this.#inFlight.values()) if (now >= entry.deadline) this.#abort(entry, "timeout");
  }

  /**
   * Abort a running job and let go of it at once, as if its handler had returned: the slot is
   * free again, and a late result from the handler is ignored. A timeout fails the attempt; after
   * a cancel or a lost lease another party owns the job and nothing is written. At the shutdown
   * deadline nothing is written either: the handler ignored its signal and may still be running,
   * so the job waits for its lease to run out (by then the process has usually exited) instead of
   * being retried at once next to it; the reaper recovers it, as after a lost lease.
   */
  #abort(entry: Running, reason: AbortReason): void {
    if (entry.settled) return;
    entry.abort(reason);
    this.#events.emit("job:aborted", { ...entry.info(), reason });
    this.#settle(entry);
    let failure: JobFailure | undefined;
    if (reason === "timeout") failure = JobFailure.timeout(WORKER_FAILURE_CODES.timeoutExceeded, TIMEOUT_MESSAGE);
    endAttempt({ job: entry.job, span: entry.span, startedAt: entry.startedAt, failure, abandoned: `job.${reason}` });
    if (failure !== undefined) this.#results.failure(entry, failure);
  }

  #start(job: RunnableJob): void {
    const entry = new Running(job, performance.now());
    const tracer = activeTracer();
    if (tracer !== undefined) entry.span = startProcessSpan(tracer, job, this.#spanRelationship);
    this.#inFlight.set(job.id, entry);
    if (this.#sweepTimer === undefined) {
      this.#sweepTimer = setInterval(() => this.#sweep(), TIMEOUT_SWEEP_MS);
      this.#sweepTimer.unref();
    }
    if (this.#events.has("job:claimed")) this.#events.emit("job:claimed", entry.info());
    void this.#execute(entry);
  }

  async #execute(entry: Running): Promise<void> {
    let value: unknown;
    let failure: JobFailure | undefined;
    try {
      value = await invokeHandler(entry, this.#registry, this.#db, this.#config.leaseTtlSeconds);
    } catch (thrown) {
      failure = JobFailure.from(thrown);
    }
    if (entry.settled) return; // aborted meanwhile: the abort recorded what there was to record
    this.#settle(entry);
    endAttempt({ job: entry.job, span: entry.span, startedAt: entry.startedAt, failure });
    if (failure === undefined) this.#results.success(entry, (value ?? undefined) as JobProgress | undefined);
    else this.#results.failure(entry, failure);
  }

  /** The worker is done waiting for this handler: free its slot and start the next job. */
  #settle(entry: Running): void {
    entry.settled = true;
    this.#inFlight.delete(entry.job.id);
    this.#pump();
    if (this.#inFlight.size === 0) this.#idle?.();
    this.#wakeForRoom();
  }

  /** Wake the claim loop when the local queue runs low (not on every finished job). */
  #wakeForRoom(): void {
    if (this.#queue.length <= this.#config.claimBatchSize / 2) this.#waker.wake();
  }
}

const TIMEOUT_MESSAGE = "Job exceeded the configured timeout.";
