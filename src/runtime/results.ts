import {
  deadLetterReason,
  defaultRetryDelayMs,
  isLabel,
  JOB_FAILURE_KINDS,
  JobFailure,
  type JobProgress,
  type RetryPolicy,
  RunledgerError,
  truncateErrorMessage,
  WORKER_FAILURE_CODES,
} from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";
import { type CompletionResult, completeJobFailure, completeJobsSuccess, type JobSuccess } from "../store/worker.ts";
import type { JobEventInfo, RuntimeEvents } from "./events.ts";
import { RunningJobContext } from "./job-context.ts";
import type { JobRegistry } from "./registry.ts";
import type { Running } from "./running.ts";

const DEAD_LETTER_HOOK_TIMEOUT_MS = 10_000;
const MAX_SUCCESS_BATCH = 1000;

/**
 * Writes handler outcomes. Successes are batched: one statement in flight while the next batch
 * accumulates, so a busy worker pays one round trip per batch rather than per job. Failures are
 * written one by one with the retry delay from the failure, the registry's override or the
 * retry policy, and dead letters run the handler's hook. `unrecorded` counts what is not written
 * yet, for the worker's backpressure.
 */
export class ResultRecorder {
  #successes: { entry: Running; progress: JobProgress | undefined }[] = [];
  #flushing: Promise<void> | undefined;
  #inFlightSuccesses = 0;
  readonly #failures = new Set<Promise<void>>();
  /** Called whenever outcomes were written, so the worker can claim again. */
  readonly #onRecorded: () => void;

  readonly db: RunledgerDb;
  readonly registry: JobRegistry;
  readonly events: RuntimeEvents;
  readonly retryPolicy: RetryPolicy;

  readonly leaseSeconds: number;

  constructor(
    db: RunledgerDb,
    registry: JobRegistry,
    events: RuntimeEvents,
    retryPolicy: RetryPolicy,
    leaseSeconds: number,
    onRecorded: () => void = () => {},
  ) {
    this.db = db;
    this.registry = registry;
    this.events = events;
    this.retryPolicy = retryPolicy;
    this.leaseSeconds = leaseSeconds;
    this.#onRecorded = onRecorded;
  }

  /** Outcomes handed over but not yet written. */
  get unrecorded(): number {
    return this.#successes.length + this.#inFlightSuccesses + this.#failures.size;
  }

  success(entry: Running, progress: JobProgress | undefined): void {
    this.#successes.push({ entry, progress });
    if (this.#flushing === undefined) this.#flushing = this.#flushLoop();
  }

  /** Write a failure (tracked until written; see `flush`). */
  failure(entry: Running, reported: JobFailure): void {
    const written = this.#writeFailure(entry, reported).finally(() => {
      this.#failures.delete(written);
      this.#onRecorded();
    });
    this.#failures.add(written);
  }

  /** Wait until every outcome handed over so far is written. */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined || this.#failures.size > 0) {
      await this.#flushing;
      await Promise.all(this.#failures);
    }
  }

  async #writeFailure(entry: Running, reported: JobFailure): Promise<void> {
    const { job } = entry;
    const durationMs = performance.now() - entry.startedAt;
    const failure = recordable(reported);
    const retryable = deadLetterReason(failure.kind, job.attempt, job.maxAttempts) === null;
    const retryDelayMs = retryable
      ? (failure.retryAfterMs ??
        this.registry.retryDelayOverride(job.jobType, failure.code) ??
        this.#policyDelay(job, failure))
      : undefined;
    try {
      const result = await completeJobFailure(this.db, {
        lease: job,
        kind: failure.kind,
        code: failure.code,
        message: failure.message,
        retryDelayMs: retryDelayMs === undefined ? undefined : Math.max(1, Math.round(retryDelayMs)),
      });
      if (result.outcome === "RETRY_SCHEDULED") {
        this.events.emit("job:failed", {
          ...entry.info(),
          kind: failure.kind,
          code: failure.code,
          durationMs,
          nextRunAt: result.nextRunAt,
        });
        return;
      }
      this.events.emit("job:dead_lettered", { ...entry.info(), kind: failure.kind, code: failure.code, durationMs });
      await this.#deadLetterHook(entry, failure);
    } catch (error) {
      this.#completionFailed(entry.info(), error);
    }
  }

  async #flushLoop(): Promise<void> {
    // Let handlers finishing in the same turn join this batch.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.#successes.length > 0) {
        const batch =
          this.#successes.length <= MAX_SUCCESS_BATCH ? this.#successes : this.#successes.slice(0, MAX_SUCCESS_BATCH);
        this.#successes = batch === this.#successes ? [] : this.#successes.slice(MAX_SUCCESS_BATCH);
        this.#inFlightSuccesses = batch.length;
        const successes = new Array<JobSuccess>(batch.length);
        for (let i = 0; i < batch.length; i++) {
          const { entry, progress } = batch[i]!;
          successes[i] =
            progress === undefined
              ? { lease: entry.job }
              : {
                  lease: entry.job,
                  progressDone: progress.progressDone,
                  progressTotal: progress.progressTotal,
                  checkpoint: progress.checkpoint,
                };
        }
        let results: CompletionResult[];
        try {
          results = await completeJobsSuccess(this.db, successes);
        } finally {
          this.#inFlightSuccesses = 0;
          this.#onRecorded();
        }
        const observed = this.events.has("job:succeeded");
        for (let i = 0; i < results.length; i++) {
          const result = results[i]!;
          const { entry } = batch[i]!;
          if (result.ok) {
            if (observed)
              this.events.emit("job:succeeded", { ...entry.info(), durationMs: performance.now() - entry.startedAt });
          } else if (result.error.category === "Validation") {
            // The handler returned progress or a checkpoint that cannot be stored: fail the job
            // now rather than leave it leased until the reaper notices.
            this.failure(
              entry,
              JobFailure.terminal(
                WORKER_FAILURE_CODES.invalidCompletion,
                "The handler's completion value could not be recorded.",
              ),
            );
          } else this.#completionFailed(entry.info(), result.error);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * The retry policy's delay, or the default backoff when the policy throws or returns something
   * that is not a finite number of milliseconds: a policy is application code, and its mistake
   * must neither crash the worker nor strand the job under its lease until the reaper comes.
   */
  #policyDelay(job: Running["job"], failure: JobFailure): number {
    try {
      const delay = this.retryPolicy({ attempt: job.attempt, jobId: job.id, jobType: job.jobType, failure });
      if (typeof delay === "number" && Number.isFinite(delay) && delay >= 0) return delay;
    } catch {
      // Falls through to the default below.
    }
    return defaultRetryDelayMs(job.attempt, job.id);
  }

  #completionFailed(info: JobEventInfo, error: unknown): void {
    const runledger = error instanceof RunledgerError ? error : undefined;
    this.events.emit("job:completion_failed", {
      ...info,
      code: runledger?.code ?? "db.query_failed",
      message: runledger?.message ?? "Recording the job's result failed.",
    });
  }

  async #deadLetterHook(entry: Running, failure: JobFailure): Promise<void> {
    const registered = this.registry.get(entry.job.jobType);
    const hook = registered?.handler.onDeadLetter;
    if (hook === undefined) return;
    const { job } = entry;
    const reason = deadLetterReason(failure.kind, job.attempt, job.maxAttempts) ?? "ATTEMPTS_EXHAUSTED";
    const context = new RunningJobContext(this.db, job, entry, this.leaseSeconds);
    await runHook(
      () => hook.call(registered!.handler, context, job.payload, { failure, reason, maxAttempts: job.maxAttempts }),
      DEAD_LETTER_HOOK_TIMEOUT_MS,
      (error) => this.events.emit("loop:error", { loop: "worker", error }),
    );
  }
}

/**
 * A handler's failure as the store can record it: an unknown kind counts as `PANICKED`, a code
 * that is blank, not storable text or longer than `MAX_IDENTIFIER_BYTES` becomes
 * `job.invalid_failure`, and the message is cut to `MAX_ERROR_MESSAGE_BYTES` (as the store would).
 */
function recordable(failure: JobFailure): JobFailure {
  const kindOk = (JOB_FAILURE_KINDS as readonly string[]).includes(failure.kind);
  const code = failure.code;
  const codeOk = isLabel(code);
  const message = typeof failure.message === "string" ? truncateErrorMessage(failure.message) : "";
  if (kindOk && codeOk && message === failure.message) return failure;
  return new JobFailure(
    kindOk ? failure.kind : "PANICKED",
    codeOk ? code : WORKER_FAILURE_CODES.invalidFailure,
    codeOk ? message : "The handler failed with a failure code that cannot be recorded.",
    { retryAfterMs: failure.retryAfterMs, cause: failure },
  );
}

/** Run a hook with a deadline, isolating its failures. */
export async function runHook(
  hook: () => Promise<void>,
  timeoutMs: number,
  onError: (error: unknown) => void,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(hook),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("hook timed out")), timeoutMs);
      }),
    ]);
  } catch (error) {
    onError(error);
  } finally {
    clearTimeout(timer);
  }
}
