import { WORKER_FAILURE_CODES } from "./errors.ts";
import { truncateErrorMessage } from "./limits.ts";
import type { JobFailureKind, JobStage } from "./statuses.ts";

/** What a running handler can see about its job and do while it runs. */
export interface JobContext {
  readonly jobId: string;
  readonly jobType: string;
  readonly organizationId: string | null;
  /** Increments on requeue; attempts restart at 1 in each run. */
  readonly runNumber: number;
  /** 1 for the first claim within the current run. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly workerId: string;
  readonly workflowRunId: string | null;
  readonly workflowStepId: string | null;
  /**
   * For a job a schedule fired: the schedule and the slot it fired for (a catch-up or backfill
   * fires old slots, each with its own time). Null for other jobs. The payload is the schedule's
   * template as it is.
   */
  readonly schedule: { readonly id: string; readonly name: string | null; readonly scheduledFor: Date } | null;
  /**
   * The checkpoint stored before this attempt was claimed — by an earlier attempt of this run, or
   * kept for a retried workflow step — or null: where a handler resumes. It does not change when
   * this attempt stores a new one.
   */
  readonly previousCheckpoint: unknown;
  /** Aborted on timeout, cancellation, lease loss and shutdown; pass it to any I/O you start. */
  readonly signal: AbortSignal;
  /** Persists stage, progress counters and checkpoint (fenced by the lease). */
  progress(update: JobProgressUpdate): Promise<void>;
  /** Extends the lease now instead of waiting for the next automatic heartbeat. */
  heartbeat(): Promise<void>;
  /** Appends a free-form log line to the job's log. */
  log(level: string, message: string, payload?: Record<string, unknown>): Promise<void>;
  /** Persists a checkpoint that survives retries within the run (read back as `previousCheckpoint`). */
  checkpoint(value: unknown): Promise<void>;
}

/** A partial progress write; absent fields keep their stored values. */
export interface JobProgressUpdate {
  stage?: JobStage;
  progressDone?: number;
  progressTotal?: number;
  checkpoint?: unknown;
}

/** Optional completion value of a handler: final progress recorded with the success. */
export interface JobProgress {
  stage: "completed";
  progressDone?: number;
  progressTotal?: number;
  checkpoint?: unknown;
}

/** Why a job was dead-lettered. */
export type JobDeadLetterReason = "FAILURE_KIND_NON_RETRYABLE" | "ATTEMPTS_EXHAUSTED" | "LEASE_EXPIRED";

/** What `onDeadLetter` learns about the final failure. */
export interface JobDeadLetterInfo {
  failure: JobFailure;
  reason: JobDeadLetterReason;
  maxAttempts: number | null;
}

/**
 * Code that runs one job type. Resolve (optionally with a `JobProgress`) to succeed; throw a
 * `JobFailure` to choose retry or dead-letter; anything else thrown counts as `PANICKED`.
 */
export interface JobHandler<P = unknown> {
  readonly jobType: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: lets a plain `async execute() {}` satisfy the contract.
  execute(context: JobContext, payload: P): Promise<void | JobProgress>;
  /** Called once after the job is dead-lettered; failures here never change the job. */
  onDeadLetter?(context: JobContext, payload: P, info: JobDeadLetterInfo): Promise<void>;
}

const PANIC_PREFIX = "Job handler panicked: ";

/**
 * A handled job failure: its `kind` decides between retry and dead-letter, `code` and
 * `message` are recorded on the attempt and the job.
 */
export class JobFailure extends Error {
  override readonly name: string = "JobFailure";
  readonly kind: JobFailureKind;
  readonly code: string;
  /** A retry delay the handler asks for instead of the policy's; positive milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: JobFailureKind,
    code: string,
    message: string,
    options: { retryAfterMs?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const { retryAfterMs } = options;
    if (retryAfterMs !== undefined && !(Number.isFinite(retryAfterMs) && retryAfterMs > 0)) {
      throw new RangeError(`retryAfterMs must be a positive number of milliseconds, got ${retryAfterMs}`);
    }
    this.kind = kind;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /** A failure worth retrying while attempts remain. */
  static retryable(code: string, message: string, options: { retryAfterMs?: number } = {}): JobFailure {
    return new JobFailure("RETRYABLE", code, message, options);
  }

  /** A failure that dead-letters the job at once. */
  static terminal(code: string, message: string): JobFailure {
    return new JobFailure("TERMINAL", code, message);
  }

  /** The handler exceeded its timeout; retried while attempts remain. */
  static timeout(
    code: string = WORKER_FAILURE_CODES.timeoutExceeded,
    message = "Job exceeded the configured timeout.",
  ): JobFailure {
    return new JobFailure("TIMEOUT", code, message);
  }

  /** The lease ran out before the job finished; retried while attempts remain. */
  static leaseExpired(
    code: string = WORKER_FAILURE_CODES.leaseExpired,
    message = "Job lease expired before completion.",
  ): JobFailure {
    return new JobFailure("LEASE_EXPIRED", code, message);
  }

  /** The handler crashed; dead-letters the job at once. */
  static panicked(
    code: string = WORKER_FAILURE_CODES.handlerPanic,
    message = "Job handler panicked.",
    options: { cause?: unknown } = {},
  ): JobFailure {
    return new JobFailure("PANICKED", code, message, options);
  }

  /**
   * Classifies anything a handler threw: a `JobFailure` passes through unchanged; any other
   * value becomes `PANICKED` with code `job.handler_panic`, its message cut to
   * `MAX_ERROR_MESSAGE_BYTES`, and the value as `cause`.
   */
  static from(thrown: unknown): JobFailure {
    if (isJobFailure(thrown)) return thrown;
    return JobFailure.panicked(
      WORKER_FAILURE_CODES.handlerPanic,
      truncateErrorMessage(PANIC_PREFIX + describe(thrown)),
      {
        cause: thrown,
      },
    );
  }
}

/** `instanceof` that survives a proxy whose traps throw. */
function isJobFailure(thrown: unknown): thrown is JobFailure {
  try {
    return thrown instanceof JobFailure;
  } catch {
    return false;
  }
}

function describe(thrown: unknown): string {
  try {
    if (thrown instanceof Error) return String(thrown.message);
    return String(thrown);
  } catch {
    // e.g. Object.create(null) or a throwing toString(): still report the panic.
    return "unprintable thrown value";
  }
}

/**
 * The dead-letter rule of `completeJobFailure`: `TERMINAL` and `PANICKED` dead-letter at once,
 * any other kind once `attempt >= maxAttempts`; `null` means the job is retried. (The reaper
 * reports `LEASE_EXPIRED` itself; this rule never returns it.)
 */
export function deadLetterReason(
  kind: JobFailureKind,
  attempt: number,
  maxAttempts: number,
): JobDeadLetterReason | null {
  if (kind === "TERMINAL" || kind === "PANICKED") return "FAILURE_KIND_NON_RETRYABLE";
  if (attempt >= maxAttempts) return "ATTEMPTS_EXHAUSTED";
  return null;
}
