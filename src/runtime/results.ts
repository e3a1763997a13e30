import {
  deadLetterReason,
  exceedsUtf8,
  JOB_FAILURE_KINDS,
  type JobContext,
  JobFailure,
  type JobProgress,
  MAX_IDENTIFIER_BYTES,
  type RetryPolicy,
  RunledgerError,
  truncateFailureMessage,
  WORKER_FAILURE_CODES,
} from "../core/index.ts";
import {
  completeJobFailure,
  completeJobsSuccess,
  type JobSuccess,
  type LeaseIdentity,
  type RunledgerDb,
  type RunnableJob,
} from "../store/index.ts";
import type { JobEventInfo, RuntimeEvents } from "./events.ts";
import type { JobRegistry } from "./registry.ts";

const DEAD_LETTER_HOOK_TIMEOUT_MS = 10_000;
const MAX_SUCCESS_BATCH = 1000;

/** A finished handler's job, as the recorder needs it. */
export interface Finished {
  job: RunnableJob;
  lease: LeaseIdentity;
  info: JobEventInfo;
  durationMs: number;
  /** Builds a context for the dead-letter hook. */
  context: () => JobContext;
}

/**
 * Writes handler outcomes. Successes are batched: one statement in flight while the next batch
 * accumulates, so a busy worker pays one round trip per batch rather than per job. Failures are
 * written one by one with the retry delay from the failure, the registry's override or the
 * retry policy, and dead letters run the handler's hook.
 */
export class ResultRecorder {
  readonly #successes: { success: JobSuccess; finished: Finished }[] = [];
  #flushing: Promise<void> | undefined;

  readonly db: RunledgerDb;
  readonly registry: JobRegistry;
  readonly events: RuntimeEvents;
  readonly retryPolicy: RetryPolicy;

  constructor(db: RunledgerDb, registry: JobRegistry, events: RuntimeEvents, retryPolicy: RetryPolicy) {
    this.db = db;
    this.registry = registry;
    this.events = events;
    this.retryPolicy = retryPolicy;
  }

  success(finished: Finished, progress: JobProgress | undefined): void {
    this.#successes.push({
      success: {
        lease: finished.lease,
        progressDone: progress?.progressDone,
        progressTotal: progress?.progressTotal,
        checkpoint: progress?.checkpoint,
      },
      finished,
    });
    if (this.#flushing === undefined) this.#flushing = this.#flushLoop();
  }

  /** Wait until every recorded success is written. */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  async failure(finished: Finished, reported: JobFailure): Promise<void> {
    const { job, lease, info, durationMs } = finished;
    const failure = recordable(reported);
    const retryable = deadLetterReason(failure.kind, job.attempt, job.maxAttempts) === null;
    const retryDelayMs = retryable
      ? (failure.retryAfterMs ??
        this.registry.retryDelayOverride(job.jobType, failure.code) ??
        this.retryPolicy({ attempt: job.attempt, jobId: job.id, jobType: job.jobType, failure }))
      : undefined;
    try {
      const result = await completeJobFailure(this.db, lease, {
        kind: failure.kind,
        code: failure.code,
        message: failure.message,
        retryDelayMs: retryDelayMs === undefined ? undefined : Math.max(1, Math.round(retryDelayMs)),
      });
      if (result.outcome === "RETRY_SCHEDULED") {
        this.events.emit("job:failed", {
          ...info,
          kind: failure.kind,
          code: failure.code,
          durationMs,
          nextRunAt: result.nextRunAt,
        });
        return;
      }
      this.events.emit("job:dead_lettered", { ...info, kind: failure.kind, code: failure.code, durationMs });
      await this.#deadLetterHook(finished, failure);
    } catch (error) {
      this.#completionFailed(info, error);
    }
  }

  async #flushLoop(): Promise<void> {
    // Let handlers finishing in the same turn join this batch.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.#successes.length > 0) {
        const batch = this.#successes.splice(0, MAX_SUCCESS_BATCH);
        const results = await completeJobsSuccess(
          this.db,
          batch.map((b) => b.success),
        );
        const observed = this.events.has("job:succeeded");
        for (const [index, result] of results.entries()) {
          const { finished } = batch[index]!;
          if (result.ok) {
            if (observed) this.events.emit("job:succeeded", { ...finished.info, durationMs: finished.durationMs });
          } else if (result.error.category === "Validation") {
            // The handler returned progress or a checkpoint that cannot be stored: fail the job
            // now rather than leave it leased until the reaper notices.
            await this.failure(
              finished,
              JobFailure.terminal(
                WORKER_FAILURE_CODES.invalidCompletion,
                "The handler's completion value could not be recorded.",
              ),
            );
          } else this.#completionFailed(finished.info, result.error);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  #completionFailed(info: JobEventInfo, error: unknown): void {
    const runledger = error instanceof RunledgerError ? error : undefined;
    this.events.emit("job:completion_failed", {
      ...info,
      code: runledger?.code ?? "db.query_failed",
      message: runledger?.message ?? "Recording the job's result failed.",
    });
  }

  async #deadLetterHook(finished: Finished, failure: JobFailure): Promise<void> {
    const registered = this.registry.get(finished.job.jobType);
    const hook = registered?.handler.onDeadLetter;
    if (hook === undefined) return;
    const { job } = finished;
    const reason = deadLetterReason(failure.kind, job.attempt, job.maxAttempts) ?? "ATTEMPTS_EXHAUSTED";
    await runHook(
      () =>
        hook.call(registered!.handler, finished.context(), job.payload, {
          failure,
          reason,
          maxAttempts: job.maxAttempts,
        }),
      DEAD_LETTER_HOOK_TIMEOUT_MS,
      (error) => this.events.emit("loop:error", { loop: "worker", error }),
    );
  }
}

/**
 * A handler's failure as the store can record it: an unknown kind counts as `PANICKED`, a code
 * that is blank, not storable text or longer than `MAX_IDENTIFIER_BYTES` becomes
 * `job.invalid_failure`, and the message is cut to `MAX_PANIC_MESSAGE_LENGTH`.
 */
function recordable(failure: JobFailure): JobFailure {
  const kindOk = (JOB_FAILURE_KINDS as readonly string[]).includes(failure.kind);
  const code = failure.code;
  const codeOk =
    typeof code === "string" &&
    code.trim() !== "" &&
    !code.includes("\u0000") &&
    code.isWellFormed() &&
    !exceedsUtf8(code, MAX_IDENTIFIER_BYTES);
  const message = typeof failure.message === "string" ? truncateFailureMessage(failure.message) : "";
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
