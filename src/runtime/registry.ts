import type { GenericSchema } from "valibot";
import { type JobHandler, RunledgerError } from "../core/index.ts";

/** A handler as the worker runs it, with the schema its payload is parsed with, if any. */
export interface RegisteredHandler {
  readonly jobType: string;
  // biome-ignore lint/suspicious/noExplicitAny: handlers of every payload type live in one map.
  readonly handler: JobHandler<any>;
  readonly payloadSchema: GenericSchema | undefined;
}

/**
 * Job type → handler, for setups that manage handlers apart from definitions (a `JobCatalog`
 * builds one for you). A later registration for the same type replaces the earlier one.
 */
export class JobRegistry {
  readonly #handlers = new Map<string, RegisteredHandler>();
  readonly #retryOverrides = new Map<string, number>();

  // biome-ignore lint/suspicious/noExplicitAny: see RegisteredHandler.
  register(handler: JobHandler<any>, options: { payloadSchema?: GenericSchema } = {}): this {
    const jobType = handler.jobType;
    if (typeof jobType !== "string" || jobType.trim() === "") throw new RunledgerError("catalog.invalid_job_type");
    this.#handlers.set(jobType, { jobType, handler, payloadSchema: options.payloadSchema });
    return this;
  }

  get(jobType: string): RegisteredHandler | undefined {
    return this.#handlers.get(jobType);
  }

  /** Registered job types, sorted. */
  registeredTypes(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  /** Use `delayMs` instead of the backoff formula when `jobType` fails with `failureCode`. */
  registerRetryDelayOverride(jobType: string, failureCode: string, delayMs: number): this {
    if (!this.#handlers.has(jobType)) throw new RunledgerError("catalog.unknown_job_type", { details: { jobType } });
    if (failureCode.trim() === "") throw new RunledgerError("catalog.invalid_failure_code");
    if (!Number.isInteger(delayMs) || delayMs <= 0) throw new RunledgerError("catalog.invalid_retry_delay");
    this.#retryOverrides.set(`${jobType}\u0000${failureCode}`, delayMs);
    return this;
  }

  retryDelayOverride(jobType: string, failureCode: string): number | undefined {
    return this.#retryOverrides.get(`${jobType}\u0000${failureCode}`);
  }
}
