import * as v from "valibot";
import {
  isRunledgerError,
  type JobContext,
  type JobHandler,
  type JobProgress,
  type Result,
  RunledgerError,
  resultOf,
  WorkflowDagBuilder,
  WorkflowStepEnqueueBuilder,
} from "../core/index.ts";
import {
  type DefinitionSyncResult,
  type EnqueuedJob,
  type Executor,
  enqueueJob,
  type JobEnqueue,
  type JobScheduleUpsert,
  syncJobDefinitions,
  syncJobDefinitionsExact,
} from "../store/index.ts";
import { JobRegistry } from "./registry.ts";

/** Definition defaults a catalog writes on sync (they differ from the database column defaults). */
export interface CatalogDefaults {
  version: number;
  maxAttempts: number;
  timeoutSeconds: number;
  priority: number;
}

export const CATALOG_DEFAULTS: Readonly<CatalogDefaults> = Object.freeze({
  version: 1,
  maxAttempts: 3,
  timeoutSeconds: 300,
  priority: 0,
});

/** A handler written as a function: it receives the (parsed) payload and the job's context. */
// biome-ignore lint/suspicious/noConfusingVoidType: an async handler that returns nothing is a Promise<void>.
export type JobHandlerFunction<P> = (payload: P, context: JobContext) => Promise<void | JobProgress>;

/**
 * A job type's flow limits (README "Flow control"), enforced across every worker. The catalog is
 * their source of truth: sync writes them, and a limit left out is removed from the database.
 */
export interface CatalogFlowLimits {
  /** Most jobs of the type running at once. */
  maxConcurrency?: number;
  /** Most jobs of the type running at once per `concurrencyKey`. */
  maxConcurrencyPerKey?: number;
  /** Most starts of the type in any window of `intervalMs`. */
  rateLimit?: { limit: number; intervalMs: number };
}

export interface CatalogJobOptions<S extends v.GenericSchema | undefined>
  extends Partial<CatalogDefaults>,
    CatalogFlowLimits {
  /** Valibot schema: `enqueue` is type-checked against its input and validated; the handler gets its output. */
  payload?: S;
}

type PayloadInput<S> = S extends v.GenericSchema ? v.InferInput<S> : unknown;
type PayloadOutput<S> = S extends v.GenericSchema ? v.InferOutput<S> : unknown;

/** A schedule's template, required when the payload schema needs more than `{}` (what an absent template becomes). */
// biome-ignore lint/complexity/noBannedTypes: `{}` is the template an omitted one stands for.
type TemplateField<P> = {} extends P ? { payloadTemplate?: P } : { payloadTemplate: P };

/** `catalog.jobSchedule`'s input: a schedule of a catalog job type whose template fits its payload schema. */
export type CatalogJobSchedule<Jobs, T extends keyof Jobs> = Omit<JobScheduleUpsert, "jobType" | "payloadTemplate"> & {
  jobType: T;
} & TemplateField<Jobs[T]>;

interface Entry {
  jobType: string;
  // biome-ignore lint/suspicious/noExplicitAny: entries of every payload type live together.
  handler: JobHandler<any>;
  schema: v.GenericSchema | undefined;
  settings: CatalogDefaults;
  limits: CatalogFlowLimits;
}

/** Options for `enqueue` beyond type and payload. */
export type CatalogEnqueueOptions = Omit<JobEnqueue, "jobType" | "payload">;

/**
 * One place that knows every job type a service runs: its handler, its definition defaults and
 * (optionally) its payload schema. Sync definitions from it, build the supervisor's registry
 * from it, and enqueue through it with type-checked, validated payloads.
 */
// biome-ignore lint/complexity/noBannedTypes: the empty catalog knows no job types yet.
export class JobCatalog<Jobs extends Record<string, unknown> = {}> {
  readonly #entries = new Map<string, Entry>();
  readonly #retryOverrides: { jobType: string; code: string; delayMs: number }[] = [];
  readonly #defaults: CatalogDefaults;
  #enabled = true;
  /** The one sync `enqueue` runs by itself when definitions are missing; settles to its error, if any. */
  #autoSync: Promise<unknown> | undefined;
  #autoSyncSettled = false;

  constructor(defaults: Partial<CatalogDefaults> = {}) {
    this.#defaults = { ...CATALOG_DEFAULTS, ...defaults };
  }

  /** Register a job type with its handler (an object or a function) and options. */
  job<T extends string, S extends v.GenericSchema | undefined = undefined>(
    jobType: T,
    handler: JobHandler<PayloadOutput<S>> | JobHandlerFunction<PayloadOutput<S>>,
    options: CatalogJobOptions<S> = {},
  ): JobCatalog<Jobs & Record<T, PayloadInput<S>>> {
    if (typeof jobType !== "string" || jobType.trim() === "") throw new RunledgerError("catalog.invalid_job_type");
    if (this.#entries.has(jobType)) throw new RunledgerError("catalog.duplicate_job_type", { details: { jobType } });
    const resolved =
      typeof handler === "function"
        ? { jobType, execute: (context: JobContext, payload: PayloadOutput<S>) => handler(payload, context) }
        : handler;
    if (typeof resolved.jobType !== "string" || resolved.jobType.trim() === "") {
      throw new RunledgerError("catalog.invalid_job_type", { details: { jobType } });
    }
    if (resolved.jobType !== jobType) {
      throw new RunledgerError("catalog.handler_job_type_mismatch", {
        details: { jobType, handlerJobType: resolved.jobType },
      });
    }
    const { payload, maxConcurrency, maxConcurrencyPerKey, rateLimit, ...overrides } = options;
    const limits = checkLimits(jobType, { maxConcurrency, maxConcurrencyPerKey, rateLimit });
    const settings = { ...this.#defaults, ...overrides };
    for (const field of ["version", "maxAttempts", "timeoutSeconds"] as const) {
      if (!Number.isInteger(settings[field]) || settings[field] <= 0) {
        throw new RunledgerError("job_definition.invalid_value", { details: { jobType, field } });
      }
    }
    if (!Number.isInteger(settings.priority)) {
      throw new RunledgerError("job_definition.invalid_value", { details: { jobType, field: "priority" } });
    }
    this.#entries.set(jobType, { jobType, handler: resolved, schema: payload, settings, limits });
    return this as unknown as JobCatalog<Jobs & Record<T, PayloadInput<S>>>;
  }

  /** `job` with the refusal returned instead of thrown; a refused registration leaves the catalog unchanged. */
  tryJob<T extends string, S extends v.GenericSchema | undefined = undefined>(
    jobType: T,
    handler: JobHandler<PayloadOutput<S>> | JobHandlerFunction<PayloadOutput<S>>,
    options: CatalogJobOptions<S> = {},
  ): Result<JobCatalog<Jobs & Record<T, PayloadInput<S>>>> {
    return resultOf(() => this.job(jobType, handler, options));
  }

  /** `enabled(false)` disables every entry on sync: queued work drains, new enqueues are refused. */
  enabled(flag: boolean): this {
    this.#enabled = flag;
    return this;
  }

  get isEnabled(): boolean {
    return this.#enabled;
  }

  /** Registered job types, sorted. */
  jobTypes(): (keyof Jobs & string)[] {
    return [...this.#entries.keys()].sort() as (keyof Jobs & string)[];
  }

  /** Use `delayMs` instead of the backoff formula when `jobType` fails with `failureCode`. */
  retryDelayOverride(jobType: keyof Jobs & string, failureCode: string, delayMs: number): this {
    if (!this.#entries.has(jobType)) throw new RunledgerError("catalog.unknown_job_type", { details: { jobType } });
    if (failureCode.trim() === "") throw new RunledgerError("catalog.invalid_failure_code");
    if (!Number.isInteger(delayMs) || delayMs <= 0) throw new RunledgerError("catalog.invalid_retry_delay");
    this.#retryOverrides.push({ jobType, code: failureCode, delayMs });
    return this;
  }

  /** `retryDelayOverride` with the refusal returned instead of thrown (nothing registered then). */
  tryRetryDelayOverride(jobType: keyof Jobs & string, failureCode: string, delayMs: number): Result<this> {
    return resultOf(() => this.retryDelayOverride(jobType, failureCode, delayMs));
  }

  /** A registry with every handler (disabled ones too, so queued work drains) and overrides. */
  toRegistry(): JobRegistry {
    const registry = new JobRegistry();
    for (const entry of this.#entries.values()) registry.register(entry.handler, { payloadSchema: entry.schema });
    for (const o of this.#retryOverrides) registry.registerRetryDelayOverride(o.jobType, o.code, o.delayMs);
    return registry;
  }

  /** The definition rows this catalog owns. */
  definitions() {
    return [...this.#entries.values()].map((entry) => ({
      jobType: entry.jobType,
      version: entry.settings.version,
      maxAttempts: entry.settings.maxAttempts,
      defaultTimeoutSeconds: entry.settings.timeoutSeconds,
      defaultPriority: entry.settings.priority,
      isEnabled: this.#enabled,
      // Every limit is written, so a limit removed from the catalog is removed on sync.
      maxConcurrency: entry.limits.maxConcurrency ?? null,
      maxConcurrencyPerKey: entry.limits.maxConcurrencyPerKey ?? null,
      rateLimit: entry.limits.rateLimit === undefined ? null : { ...entry.limits.rateLimit },
    }));
  }

  /**
   * Write the catalog's definitions (additive: types absent from the catalog are left alone).
   * An enabled catalog keeps an operator's pause on an existing row; `enabled(false)` disables.
   */
  syncDefinitions(db: Executor): Promise<DefinitionSyncResult> {
    return syncJobDefinitions(db, this.definitions(), this.#enabled ? "preserve-enabled" : "restore-enabled");
  }

  /**
   * Make `scope` match the catalog exactly: write every entry with the catalog's enabled state and
   * disable enabled in-scope types the catalog lacks (refused while an active schedule uses one).
   */
  syncDefinitionsExact(db: Executor, scope: readonly string[]): Promise<DefinitionSyncResult> {
    if (scope.length === 0) throw new RunledgerError("catalog.invalid_exact_sync_scope");
    if (scope.some((t) => typeof t !== "string" || t.trim() === "")) {
      throw new RunledgerError("catalog.invalid_exact_sync_scope", { details: { reason: "blank job type" } });
    }
    if (this.#entries.size === 0) throw new RunledgerError("catalog.empty_exact_sync_catalog");
    const outside = this.jobTypes().filter((t) => !scope.includes(t));
    if (outside.length > 0)
      throw new RunledgerError("catalog.job_type_outside_exact_sync_scope", { details: { jobTypes: outside } });
    return syncJobDefinitionsExact(db, this.definitions(), [...scope]);
  }

  /**
   * A step of a catalog job for `WorkflowRunEnqueueBuilder` (per-step priority, attempts, timeout,
   * dependencies). Refused at the call, with the step key in `details`: a type the catalog does
   * not know (`catalog.unknown_job_type`), a disabled catalog (`catalog.disabled_job_type`), a
   * payload its schema refuses (`job.invalid_payload`), a blank step key
   * (`workflow.invalid_dag_step_key_blank`).
   */
  workflowStep<T extends keyof Jobs & string>(
    stepKey: string,
    jobType: T,
    payload: Jobs[T],
  ): WorkflowStepEnqueueBuilder {
    const checked = resultOf(() => this.request(jobType, payload));
    if (!checked.ok) {
      throw new RunledgerError(checked.error.code, { details: { ...checked.error.details, stepKey } });
    }
    return WorkflowStepEnqueueBuilder.tryJob(stepKey, jobType, payload);
  }

  /** `workflowStep` with the refusal returned instead of thrown. */
  tryWorkflowStep<T extends keyof Jobs & string>(
    stepKey: string,
    jobType: T,
    payload: Jobs[T],
  ): Result<WorkflowStepEnqueueBuilder> {
    return resultOf(() => this.workflowStep(stepKey, jobType, payload));
  }

  /**
   * The validated enqueue request for a catalog job: unknown types, a disabled catalog and a
   * payload that fails its schema are refused (`job.invalid_payload`, with the failing paths).
   */
  request<T extends keyof Jobs & string>(
    jobType: T,
    payload: Jobs[T],
    options: CatalogEnqueueOptions = {},
  ): JobEnqueue {
    const entry = this.#entries.get(jobType);
    if (entry === undefined) throw new RunledgerError("catalog.unknown_job_type", { details: { jobType } });
    if (!this.#enabled) throw new RunledgerError("catalog.disabled_job_type", { details: { jobType } });
    checkPayload(entry, payload, {});
    return { ...options, jobType, payload };
  }

  /**
   * Enqueue a catalog job; see `request` for what is checked first. Nothing is written when refused.
   *
   * On a fresh database a web process may enqueue before any worker has synced definitions. So
   * the first time in this catalog's life that the database answers
   * `job.definition_not_found_or_disabled`, the catalog syncs its definitions (in `db`, which may
   * be the caller's transaction, inside a savepoint) and retries once. Sync keeps an operator's
   * pause, so a disabled type stays refused.
   */
  async enqueue<T extends keyof Jobs & string>(
    db: Executor,
    jobType: T,
    payload: Jobs[T],
    options: CatalogEnqueueOptions = {},
  ): Promise<EnqueuedJob> {
    const request = this.request(jobType, payload, options);
    // Only a refusal that came after the sync is final: one that started before it ended (a
    // concurrent first enqueue whose answer came late) retries like the others.
    const syncedBefore = this.#autoSyncSettled;
    try {
      return await enqueueJob(db, request);
    } catch (error) {
      if (!isRunledgerError(error, "job.definition_not_found_or_disabled") || syncedBefore) throw error;
      // Concurrent first enqueues share the one sync, then each retries.
      this.#autoSync ??= db
        .transaction((tx) => this.syncDefinitions(tx))
        .then(
          () => undefined,
          (syncError: unknown) => syncError,
        )
        .finally(() => {
          this.#autoSyncSettled = true;
        });
      const syncError = await this.#autoSync;
      if (syncError !== undefined) {
        throw new RunledgerError(error.code, { details: { ...error.details, syncFailed: true }, cause: syncError });
      }
      return enqueueJob(db, request);
    }
  }

  /**
   * A schedule upsert for a catalog job type. Checks catalog membership and the catalog's enabled
   * flag (the database still refuses to materialize a disabled definition), and validates the
   * template against the job type's payload schema (`job.invalid_payload`, with the failing
   * paths; an omitted template is `{}`), so a schedule never fires jobs its handler refuses.
   */
  jobSchedule<T extends keyof Jobs & string>(input: CatalogJobSchedule<Jobs, T>): JobScheduleUpsert {
    const entry = this.#entries.get(input.jobType);
    if (entry === undefined)
      throw new RunledgerError("catalog.unknown_job_type", { details: { jobType: input.jobType } });
    if (!this.#enabled) throw new RunledgerError("catalog.disabled_job_type", { details: { jobType: input.jobType } });
    checkPayload(entry, input.payloadTemplate ?? {}, { scheduleName: input.name, field: "payloadTemplate" });
    return { ...input };
  }

  /**
   * A workflow builder whose `.job(step, type, payload)` is typed by this catalog and refuses, at
   * the call, job types the catalog does not know (`workflow.invalid_dag_unknown_job_type`) and
   * payloads their schema refuses (`job.invalid_payload`, naming the step and the failing paths).
   */
  workflow(workflowType: string, metadata: unknown = {}): WorkflowDagBuilder<Jobs> {
    return WorkflowDagBuilder.new<Jobs>(workflowType, metadata, {
      checkJobType: (jobType) => {
        if (!this.#entries.has(jobType)) {
          throw new RunledgerError("workflow.invalid_dag_unknown_job_type", { details: { jobType } });
        }
      },
      checkPayload: (jobType, payload, stepKey) => checkPayload(this.#entries.get(jobType)!, payload, { stepKey }),
    });
  }
}

const isLimit = (value: unknown) =>
  Number.isInteger(value) && (value as number) > 0 && (value as number) <= 2 ** 31 - 1;

/**
 * Positive int32s (the interval in milliseconds), else `job_definition.invalid_value` naming the
 * field, at registration: a catalog that would fail its sync is refused where it is written.
 */
function checkLimits(jobType: string, limits: CatalogFlowLimits): CatalogFlowLimits {
  const invalid = (field: string) =>
    new RunledgerError("job_definition.invalid_value", { details: { jobType, field } });
  for (const field of ["maxConcurrency", "maxConcurrencyPerKey"] as const) {
    if (limits[field] !== undefined && !isLimit(limits[field])) throw invalid(field);
  }
  const rate = limits.rateLimit;
  if (rate !== undefined) {
    if (rate === null || typeof rate !== "object" || !isLimit(rate.limit)) throw invalid("rateLimit.limit");
    if (!isLimit(rate.intervalMs)) throw invalid("rateLimit.intervalMs");
  }
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
}

/** Throw `job.invalid_payload` (with the failing paths, never the values) unless `payload` fits the entry's schema. */
function checkPayload(entry: Entry, payload: unknown, where: Record<string, unknown>): void {
  if (entry.schema === undefined) return;
  const parsed = v.safeParse(entry.schema, payload);
  if (parsed.success) return;
  throw new RunledgerError("job.invalid_payload", {
    details: {
      jobType: entry.jobType,
      ...where,
      issues: parsed.issues.map((issue) => ({ path: v.getDotPath(issue), kind: issue.type })),
    },
  });
}
