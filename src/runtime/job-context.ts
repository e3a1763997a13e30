import { ALL_ORGANIZATIONS, type JobContext, type JobProgressUpdate } from "../core/index.ts";
import { insertJobLog, type RunledgerDb } from "../store/index.ts";
import { heartbeatJob, type RunnableJob, updateJobProgress } from "../store/worker.ts";

/** What a context needs from the job's run: its signal, made when first asked for. */
export interface SignalSource {
  signal(): AbortSignal;
}

/**
 * The context a handler receives: who it is running as, its signal, and lease-fenced writes. One
 * object per job with its methods on the prototype: a context of closures, and an AbortController
 * per job whether or not the handler reads `signal`, were a visible share of a busy worker's CPU
 * and garbage.
 */
export class RunningJobContext implements JobContext {
  readonly #db: RunledgerDb;
  readonly #job: RunnableJob;
  readonly #source: SignalSource;
  readonly #leaseSeconds: number;

  constructor(db: RunledgerDb, job: RunnableJob, source: SignalSource, leaseSeconds: number) {
    this.#db = db;
    this.#job = job;
    this.#source = source;
    this.#leaseSeconds = leaseSeconds;
  }

  get jobId(): string {
    return this.#job.id;
  }
  get jobType(): string {
    return this.#job.jobType;
  }
  get organizationId(): string | null {
    return this.#job.organizationId;
  }
  get runNumber(): number {
    return this.#job.runNumber;
  }
  get attempt(): number {
    return this.#job.attempt;
  }
  get maxAttempts(): number {
    return this.#job.maxAttempts;
  }
  get workerId(): string {
    return this.#job.workerId;
  }
  get workflowRunId(): string | null {
    return this.#job.workflowRunId;
  }
  get workflowStepId(): string | null {
    return this.#job.workflowStepId;
  }
  get schedule(): RunnableJob["schedule"] {
    return this.#job.schedule;
  }

  get previousCheckpoint(): unknown {
    return this.#job.checkpoint ?? null;
  }
  get signal(): AbortSignal {
    return this.#source.signal();
  }

  progress(update: JobProgressUpdate): Promise<void> {
    return updateJobProgress(this.#db, { ...update, lease: this.#job });
  }

  async heartbeat(): Promise<void> {
    await heartbeatJob(this.#db, { lease: this.#job, leaseSeconds: this.#leaseSeconds });
  }

  async log(level: string, message: string, payload?: Record<string, unknown>): Promise<void> {
    await insertJobLog(this.#db, {
      scope: this.#job.organizationId === null ? ALL_ORGANIZATIONS : { organizationId: this.#job.organizationId },
      jobId: this.#job.id,
      runNumber: this.#job.runNumber,
      attempt: this.#job.attempt,
      level,
      message,
      payload,
    });
  }

  checkpoint(value: unknown): Promise<void> {
    return updateJobProgress(this.#db, { lease: this.#job, checkpoint: value });
  }
}
