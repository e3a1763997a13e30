import type { Span } from "@opentelemetry/api";
import * as v from "valibot";
import { JobFailure, WORKER_FAILURE_CODES } from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";
import type { RunnableJob } from "../store/worker.ts";
import type { AbortReason, JobEventInfo } from "./events.ts";
import { RunningJobContext, type SignalSource } from "./job-context.ts";
import type { JobRegistry } from "./registry.ts";
import { withSpan } from "./telemetry.ts";

/** A job whose handler this worker started. */
export class Running implements SignalSource {
  readonly job: RunnableJob;
  readonly startedAt: number;
  readonly deadline: number;
  /** Why the job was aborted, once it is. */
  abortReason: AbortReason | undefined = undefined;
  /** Set when the worker stops waiting for the handler: it finished, or it was aborted. */
  settled = false;
  /** The attempt's CONSUMER span, only when a tracer provider is registered. */
  span: Span | undefined = undefined;
  #controller: AbortController | undefined = undefined;

  constructor(job: RunnableJob, now: number) {
    this.job = job;
    this.startedAt = now;
    this.deadline = now + Math.max(job.timeoutSeconds, 1) * 1000;
  }

  /** Made only when the handler reads its signal: most never do. */
  signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.abortReason !== undefined) this.#controller.abort(this.abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: AbortReason): void {
    this.abortReason = reason;
    this.#controller?.abort(reason);
  }

  info(): JobEventInfo {
    const { job } = this;
    return {
      jobId: job.id,
      jobType: job.jobType,
      runNumber: job.runNumber,
      attempt: job.attempt,
      workerId: job.workerId,
    };
  }
}

/**
 * Start a job's handler and return its promise: the payload is parsed first when the handler has
 * a schema; an unregistered type or a payload that does not match fails the attempt terminally.
 */
export function invokeHandler(
  entry: Running,
  registry: JobRegistry,
  db: RunledgerDb,
  leaseSeconds: number,
): Promise<unknown> {
  const { job } = entry;
  const registered = registry.get(job.jobType);
  if (registered === undefined) {
    throw JobFailure.terminal(
      WORKER_FAILURE_CODES.handlerNotRegistered,
      `No handler is registered for ${job.jobType}.`,
    );
  }
  let payload: unknown = job.payload;
  if (registered.payloadSchema !== undefined) {
    const parsed = v.safeParse(registered.payloadSchema, payload);
    if (!parsed.success) throw JobFailure.terminal("job.invalid_payload", "The job payload does not match its schema.");
    payload = parsed.output;
  }
  const context = new RunningJobContext(db, job, entry, leaseSeconds);
  return withSpan(entry.span, () => Promise.resolve(registered.handler.execute(context, payload)));
}
