import { type RetryPolicy, RunledgerError } from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";
import type { JobsConfig } from "./config.ts";
import { type LoopName, type RuntimeEventMap, type RuntimeEventName, RuntimeEvents } from "./events.ts";
import { type RunledgerLogger, silentLogger, stderrLogger } from "./logger.ts";
import { aborted, type RuntimeLoopExit } from "./loop.ts";
import { DEFAULT_LOOP_BACKOFF, type LoopBackoff, LoopMonitor, type LoopStatus } from "./loop-monitor.ts";
import { Reaper } from "./reaper.ts";
import type { JobRegistry } from "./registry.ts";
import { RetentionSweeper } from "./retention.ts";
import { Scheduler } from "./scheduler.ts";
import { observeQueueMetrics, observeWorkflowRuns, type TelemetryOptions } from "./telemetry.ts";
import { Worker } from "./worker.ts";

/** Anything that can hand the supervisor a registry: a `JobRegistry` or a `JobCatalog`. */
export interface RegistrySource {
  toRegistry(): JobRegistry;
}

/** What a shutdown left behind. */
export interface ShutdownReport {
  /**
   * Jobs whose handlers were still running at the deadline. Nothing is written for them: their
   * leases run out and the reaper retries or dead-letters them, as after a crash.
   */
  abandoned: string[];
}

/**
 * Asks a supervisor to stop without owning it: for a signal handler, an admin endpoint or a test.
 * Any number may exist; they all act on the same supervisor.
 */
export interface ShutdownHandle {
  /** Ask the loops to stop (idempotent); whoever awaits `join()` or `shutdown()` sees them finish. */
  requestShutdown(): void;
  readonly isShutdownRequested: boolean;
  /** Aborts when shutdown is requested, by this handle or any other way. */
  readonly signal: AbortSignal;
}

interface Task {
  name: LoopName;
  promise: Promise<RuntimeLoopExit>;
  done: boolean;
}

/** One loop in `Supervisor.health()`. */
export interface LoopHealth extends LoopStatus {
  /** Its task has not returned or thrown. */
  alive: boolean;
}

/** What `Supervisor.health()` reports. */
export interface SupervisorHealth {
  /**
   * `ok` when every loop runs and none is failing; `degraded` while one fails (it retries with
   * backoff); `draining` once shutdown was requested; `stopped` when a loop has ended, or
   * `starting` before `start()`.
   */
  status: "starting" | "ok" | "degraded" | "draining" | "stopped";
  /** Whether this process should receive work: status `ok`. */
  ready: boolean;
  draining: boolean;
  /** Handlers running now. */
  inFlight: number;
  /** Jobs claimed and waiting for a slot. */
  queued: number;
  /** The worker's notification listener, as last known (see `Worker.listenerConnected`); null without a worker. */
  listenerConnected: boolean | null;
  /**
   * Each loop by name; `worker.heartbeat` is the worker's lease renewal, `retention` and
   * `retention.runs` the retention sweep's jobs and workflow runs passes (absent when it is off).
   */
  loops: Record<string, LoopHealth>;
}

/**
 * Runs the worker, scheduler, reaper and retention loops of one process against one database.
 * They start together and stop together: shutdown aborts one signal that every loop watches, so
 * the scheduler, reaper and retention end after the pass they are in while the worker stops
 * claiming, hands back claims it never started and drains its running handlers. Build with
 * `Supervisor.builder(db, config).withCatalog(catalog).build()`.
 */
export class Supervisor {
  readonly events = new RuntimeEvents();
  readonly worker: Worker | undefined;
  readonly reaper: Reaper | undefined;
  readonly scheduler: Scheduler | undefined;
  /** The retention sweep; absent when disabled or `retentionIntervalMs` is 0. */
  readonly retention: RetentionSweeper | undefined;
  readonly #controller = new AbortController();
  #tasks: Task[] = [];
  #failure: Promise<never> | undefined;
  readonly #monitors = new Map<string, LoopMonitor>();
  readonly #db: RunledgerDb;
  readonly #telemetry: TelemetryOptions;

  /** @internal use `Supervisor.builder`. */
  constructor(parts: {
    db: RunledgerDb;
    config: JobsConfig;
    registry: JobRegistry | undefined;
    worker: boolean;
    reaper: boolean;
    scheduler: boolean;
    retention: boolean;
    retryPolicy?: RetryPolicy;
    now?: () => Date;
    logger?: RunledgerLogger;
    backoff?: LoopBackoff;
    telemetry?: TelemetryOptions;
  }) {
    const { db, config, registry } = parts;
    this.#db = db;
    this.#telemetry = parts.telemetry ?? {};
    const monitor = (name: string) => {
      const created = new LoopMonitor(name, {
        logger: parts.logger ?? stderrLogger,
        events: this.events,
        backoff: parts.backoff ?? DEFAULT_LOOP_BACKOFF,
      });
      this.#monitors.set(name, created);
      return created;
    };
    if (parts.worker && registry !== undefined) {
      this.worker = new Worker({
        db,
        registry,
        config,
        events: this.events,
        retryPolicy: parts.retryPolicy,
        monitor: monitor("worker"),
        heartbeatMonitor: monitor("worker.heartbeat"),
        spanRelationship: this.#telemetry.spanRelationship,
      });
    }
    if (parts.reaper && registry !== undefined) {
      this.reaper = new Reaper({ db, registry, config, events: this.events, monitor: monitor("reaper") });
    }
    if (parts.scheduler) {
      this.scheduler = new Scheduler({
        db,
        config,
        events: this.events,
        now: parts.now,
        monitor: monitor("scheduler"),
      });
    }
    if (parts.retention && config.retentionIntervalMs > 0) {
      // The database's clock, not the scheduler's: a test clock far ahead must not age rows out.
      this.retention = new RetentionSweeper({
        db,
        config,
        events: this.events,
        monitor: monitor("retention"),
        runsMonitor: monitor("retention.runs"),
      });
    }
  }

  /**
   * Liveness and readiness: each loop (alive, last success, failures and backoff), the listener,
   * in-flight and queued jobs, and whether it drains. Cheap: reads only what the loops track.
   */
  health(): SupervisorHealth {
    const loops: Record<string, LoopHealth> = {};
    for (const [name, monitor] of this.#monitors) {
      const task = this.#tasks.find((t) => t.name === name.split(".")[0]);
      loops[name] = { ...monitor.status(), alive: task !== undefined && !task.done };
    }
    const draining = this.#controller.signal.aborted;
    const values = Object.values(loops);
    const status: SupervisorHealth["status"] =
      this.#tasks.length === 0
        ? "starting"
        : values.some((loop) => !loop.alive)
          ? "stopped"
          : draining
            ? "draining"
            : values.some((loop) => loop.state === "failing")
              ? "degraded"
              : "ok";
    return {
      status,
      ready: status === "ok",
      draining,
      inFlight: this.worker?.inFlight ?? 0,
      queued: this.worker?.queued ?? 0,
      listenerConnected: this.worker === undefined ? null : (this.worker.listenerConnected ?? false),
      loops,
    };
  }

  static builder(db: RunledgerDb, config: JobsConfig): SupervisorBuilder {
    return new SupervisorBuilder(db, config);
  }

  on<K extends RuntimeEventName>(name: K, listener: (event: RuntimeEventMap[K]) => void): () => void {
    return this.events.on(name, listener);
  }

  get isShutdownRequested(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Start the loops (once). */
  start(): this {
    if (this.#tasks.length > 0) throw new RunledgerError("runtime.already_started");
    const signal = this.#controller.signal;
    const task = (name: LoopName, promise: Promise<RuntimeLoopExit>) => {
      const entry: Task = { name, promise, done: false };
      const done = () => {
        entry.done = true;
      };
      promise.then(done, done);
      this.#tasks.push(entry);
    };
    if (this.worker) task("worker", this.worker.run(signal));
    if (this.scheduler) task("scheduler", this.scheduler.run(signal));
    if (this.reaper) task("reaper", this.reaper.run(signal));
    if (this.retention) task("retention", this.retention.run(signal));
    const { queueMetrics, workflowRunSpans } = this.#telemetry;
    const stopped = Promise.allSettled(this.#tasks.map((t) => t.promise));
    if (queueMetrics) void stopped.then(observeQueueMetrics(this.#db, queueMetrics === true ? {} : queueMetrics));
    if (workflowRunSpans) {
      const onError = (error: unknown) => this.events.emit("loop:error", { loop: "worker", error });
      const observing = observeWorkflowRuns(this.#db, { onError });
      observing.catch(onError);
      void stopped.then(() => observing.then((stop) => stop()).catch(() => {}));
    }
    // The first loop to fail or return before shutdown was requested.
    this.#failure = Promise.race(
      this.#tasks.map(({ name, promise }) =>
        promise.then(
          () => {
            if (signal.aborted) return new Promise<never>(() => {});
            throw new RunledgerError("runtime.task_exited_unexpectedly", { details: { task: name } });
          },
          (error: unknown) => {
            throw new RunledgerError("runtime.task_failed", { details: { task: name }, cause: error });
          },
        ),
      ),
    );
    this.#failure.catch(() => {});
    return this;
  }

  /** Ask the loops to stop without waiting. */
  requestShutdown(): void {
    this.#controller.abort();
  }

  /** A handle that can request this supervisor's shutdown from elsewhere (see `join`). */
  shutdownHandle(): ShutdownHandle {
    const controller = this.#controller;
    return {
      requestShutdown: () => controller.abort(),
      get isShutdownRequested() {
        return controller.signal.aborted;
      },
      signal: controller.signal,
    };
  }

  /**
   * Start (if needed) and wait until every loop has stopped, with no deadline of its own (running
   * handlers get the worker's drain time, 30 s unless `shutdown` set another). Resolves with the
   * shutdown report once a shutdown requested by `requestShutdown` or a handle has drained. If a
   * loop fails or returns before that, requests shutdown, waits for the others, and rejects with
   * the first failure (`runtime.task_failed` or `runtime.task_exited_unexpectedly`).
   */
  async join(): Promise<ShutdownReport> {
    if (this.#tasks.length === 0) this.start();
    let loopFailure: unknown;
    try {
      await Promise.race([aborted(this.#controller.signal), this.#failure]);
    } catch (error) {
      loopFailure = error;
      this.requestShutdown();
    }
    const settled = await Promise.allSettled(this.#tasks.map((t) => t.promise));
    if (loopFailure !== undefined) throw loopFailure;
    this.#throwFailed(settled);
    return { abandoned: this.worker?.lastDrain.abandoned ?? [] };
  }

  #throwFailed(settled: PromiseSettledResult<RuntimeLoopExit>[]): void {
    const failed = settled.findIndex((r) => r.status === "rejected");
    if (failed === -1) return;
    throw new RunledgerError("runtime.task_failed", {
      details: { task: this.#tasks[failed]!.name },
      cause: (settled[failed] as PromiseRejectedResult).reason,
    });
  }

  /**
   * Stop claiming, let running handlers finish for up to `timeoutMs`, abort the rest (reported as
   * `abandoned`; nothing is written for them, the reaper recovers them once their leases run out),
   * and wait for every loop. Rejects with
   * `runtime.shutdown_timeout` (`details.timeoutMs`) if a loop has still not stopped 5 s after
   * that deadline (it is left running; `join()` waits for it), or with the error of a loop that
   * had failed.
   */
  async shutdown(timeoutMs = 30_000): Promise<ShutdownReport> {
    if (this.worker) this.worker.drainTimeoutMs = timeoutMs;
    this.requestShutdown();
    const grace = timeoutMs + 5_000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), grace);
    });
    const settled = Promise.allSettled(this.#tasks.map((t) => t.promise));
    const result = await Promise.race([settled, deadline]);
    clearTimeout(timer);
    if (result === "timeout") throw new RunledgerError("runtime.shutdown_timeout", { details: { timeoutMs } });
    this.#throwFailed(result);
    return { abandoned: this.worker?.lastDrain.abandoned ?? [] };
  }

  /**
   * Give running handlers at most `timeoutMs` more, from now, in a shutdown in progress; then
   * they are aborted as at the deadline. `shutdownOnSignals` calls it on a second signal.
   */
  shortenShutdown(timeoutMs: number): void {
    this.worker?.shortenDrain(timeoutMs);
  }

  /**
   * Start (if needed) and run until `signal` fires — an `AbortSignal` or a promise such as a
   * SIGTERM listener — or a loop fails; then shut down with `timeoutMs`. Rejects when a loop
   * failed or exited early, or the shutdown timed out: treat that as fatal for the process.
   */
  async runUntilShutdown(signal: AbortSignal | PromiseLike<unknown>, timeoutMs = 30_000): Promise<ShutdownReport> {
    if (this.#tasks.length === 0) this.start();
    const external = signal instanceof AbortSignal ? aborted(signal) : Promise.resolve(signal).then(() => undefined);
    let loopFailure: unknown;
    try {
      await Promise.race([external, this.#failure]);
    } catch (error) {
      loopFailure = error;
    }
    const report = await this.shutdown(timeoutMs);
    if (loopFailure !== undefined) throw loopFailure;
    return report;
  }
}

export class SupervisorBuilder {
  readonly #db: RunledgerDb;
  readonly #config: JobsConfig;
  #registry: JobRegistry | undefined;
  #source: "registry" | "catalog" | undefined;
  #worker = true;
  #reaper = true;
  #scheduler = true;
  #retention = true;
  #now: (() => Date) | undefined;
  #retryPolicy: RetryPolicy | undefined;
  #logger: RunledgerLogger | undefined;
  #backoff: LoopBackoff | undefined;
  #telemetry: TelemetryOptions | undefined;

  constructor(db: RunledgerDb, config: JobsConfig) {
    this.#db = db;
    this.#config = config;
  }

  withRegistry(registry: JobRegistry): this {
    return this.#use("registry", registry);
  }

  withCatalog(catalog: RegistrySource): this {
    return this.#use("catalog", catalog.toRegistry());
  }

  /** Replace the default backoff for retryable failures without their own delay. */
  withRetryPolicy(policy: RetryPolicy): this {
    this.#retryPolicy = policy;
    return this;
  }

  /**
   * Where loop state changes go ("worker: database unreachable (db.connection_failed), retrying
   * in 4 s" … "worker: reconnected after 21 s"): a pino logger, `console`, or anything with
   * `info`/`warn`/`error(fields, message)`. Default: one line each on stderr; `null` silences them.
   */
  withLogger(logger: RunledgerLogger | null): this {
    this.#logger = logger ?? silentLogger;
    return this;
  }

  /** How long failing loops wait before trying again: doubling from `initialMs` up to `maxMs` (1 s … 15 s). */
  withLoopBackoff(backoff: Partial<LoopBackoff>): this {
    this.#backoff = { ...DEFAULT_LOOP_BACKOFF, ...backoff };
    if (!(this.#backoff.initialMs > 0 && this.#backoff.maxMs >= this.#backoff.initialMs)) {
      throw new RunledgerError("config.invalid", { details: { field: "loopBackoff" } });
    }
    return this;
  }

  /** OpenTelemetry settings: span relationship, queue gauges (see `TelemetryOptions`). */
  withTelemetry(options: TelemetryOptions): this {
    this.#telemetry = options;
    return this;
  }

  disableWorker(): this {
    this.#worker = false;
    return this;
  }

  disableScheduler(): this {
    this.#scheduler = false;
    return this;
  }

  /** No retention sweep in this process (others may still sweep: it is leaderless). */
  disableRetention(): this {
    this.#retention = false;
    return this;
  }

  /** The scheduler's clock; tests inject one. */
  withClock(now: () => Date): this {
    this.#now = now;
    return this;
  }

  disableReaper(): this {
    this.#reaper = false;
    return this;
  }

  build(): Supervisor {
    if ((this.#worker || this.#reaper) && this.#registry === undefined) {
      throw new RunledgerError("runtime.missing_registry", { details: { worker: this.#worker, reaper: this.#reaper } });
    }
    return new Supervisor({
      db: this.#db,
      config: this.#config,
      registry: this.#registry,
      worker: this.#worker,
      reaper: this.#reaper,
      scheduler: this.#scheduler,
      retention: this.#retention,
      retryPolicy: this.#retryPolicy,
      now: this.#now,
      logger: this.#logger,
      backoff: this.#backoff,
      telemetry: this.#telemetry,
    });
  }

  #use(source: "registry" | "catalog", registry: JobRegistry): this {
    if (this.#source !== undefined) throw new RunledgerError("runtime.mixed_registry_sources");
    this.#source = source;
    this.#registry = registry;
    return this;
  }
}
