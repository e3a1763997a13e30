/**
 * One error class for everything runledger reports, with stable dotted codes.
 *
 * `message` is fixed per code and safe to show a client: it never contains SQL, parameters,
 * payloads or keys. Whatever a server log needs beyond that lives in `internalMessage()`
 * and in `cause`.
 */

export const ERROR_CATEGORIES = ["Conflict", "Validation", "Forbidden", "Internal"] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

type Entry = readonly [category: ErrorCategory, message: string];

const V = "Validation";
const C = "Conflict";
const F = "Forbidden";
const I = "Internal";

/** Every code runledger raises, with its category and client-safe message. */
export const ERROR_CATALOG = {
  // organization scope
  "scope.required": [V, "A scope is required: one organization, or all organizations by name."],

  // identifiers
  "identifier.job_type_blank": [V, "Job type must not be blank."],
  "identifier.workflow_type_blank": [V, "Workflow type must not be blank."],
  "identifier.step_key_blank": [V, "Step key must not be blank."],
  "identifier.invalid_uuid": [V, "Identifier must be a UUID."],
  "identifier.too_long": [V, "Identifier is longer than the limit."],

  // JSON values (payloads, metadata, templates, checkpoints, log payloads)
  "payload.too_large": [V, "JSON value is larger than the size limit."],
  "payload.too_deep": [V, "JSON value is nested deeper than the limit."],

  // jobs
  "job.definition_not_found_or_disabled": [V, "Job definition was not found or is disabled."],
  "job.definition_not_found": [V, "Job definition was not found."],
  "job.idempotency_conflict": [C, "A job with this idempotency key exists with a different request."],
  "job.legacy_idempotency_snapshot_missing": [C, "The existing keyed job has no enqueue request snapshot to compare."],
  "job.idempotency_conflict_missing_existing": [I, "Idempotent enqueue conflicted but the existing job was not found."],
  "job.enqueue_idempotency_unsupported_isolation": [V, "Keyed enqueue requires READ COMMITTED isolation."],
  "job.job_key_contention": [C, "Another writer took this job key during the enqueue; retry."],
  "job.already_enqueued": [C, "A job with this idempotency key already exists."],
  "job.invalid_enqueue_request": [V, "The enqueue request is invalid."],
  "job.invalid_payload": [V, "The job payload does not match the job type's schema."],
  "job.lease_owner_mismatch": [F, "Job lease is not currently held by this worker."],
  "job.invalid_lease_duration": [V, "Job lease duration must be positive."],
  "job.invalid_claim_fairness": [V, "Claim fairness must be organization or concurrencyKey."],
  "job.invalid_retry_delay": [V, "Job retry delay must be positive."],
  "job.invalid_progress": [V, "Job progress is invalid."],
  "job.invalid_success_stage": [V, "A successful job can only complete with stage 'completed'."],
  "job.unstarted_claim_release_not_applicable": [V, "The job claim cannot be released as unstarted."],
  "job.not_found": [V, "Job was not found."],
  "job.invalid_state_transition": [V, "Job is not in a status that allows this operation."],
  "job.workflow_requeue_not_supported": [V, "Jobs that back a workflow step cannot be requeued directly."],
  "job.runtime_config_not_found": [V, "Job runtime config was not found."],
  "job.invalid_runtime_config": [V, "Job runtime config is invalid."],
  "job.invalid_pagination": [V, "Pagination parameters are invalid."],
  "job.invalid_log": [V, "Job log entry is invalid."],
  "job.invalid_failure_report": [V, "Job failure report is invalid."],
  "job.invalid_worker_id": [V, "Worker id must not be blank."],

  // job definitions and catalog sync
  "job_definition.empty_job_type_list": [V, "Exact definition sync needs a non-empty catalog and scope."],
  "job_definition.invalid_value": [V, "Job definition values are invalid."],
  "flow.invalid_limit": [V, "Flow control limits are invalid."],
  "flow.key_limit_not_found": [V, "No key limit exists for this pattern."],
  "flow.unsupported_isolation": [V, "A flow-controlled claim needs READ COMMITTED isolation."],
  "job_definition.duplicate_job_type": [V, "A definition list names the same job type twice."],
  "job_definition.active_schedule_exists": [C, "An active schedule still references this job type."],

  // schedules
  "job_schedule.invalid_name": [V, "Schedule name is invalid."],
  "job_schedule.invalid_cron": [V, "Cron expression is invalid."],
  "job_schedule.invalid_job_type": [V, "Schedule job type is invalid."],
  "job_schedule.name_taken": [C, "Schedule name is already in use."],
  "job_schedule.invalid_jitter": [V, "Schedule jitter must be between 0 and 86400 seconds."],
  "job_schedule.invalid_timezone": [V, "Schedule time zone must be an IANA time zone name such as Europe/Berlin."],
  "job_schedule.invalid_overlap_policy": [V, "Schedule overlap policy must be ALLOW, SKIP or BUFFER_ONE."],
  "job_schedule.invalid_catchup_window": [V, "Schedule catch-up window must be between 0 and 31622400 seconds."],
  "job_schedule.invalid_backfill_range": [V, "Backfill needs a valid interval that ends no later than now."],
  "job_schedule.backfill_too_large": [V, "Backfill interval covers more slots than one request may fire."],
  "job_schedule.not_found": [V, "Schedule was not found."],
  "job_schedule.definition_not_found_or_disabled": [V, "Schedule job definition was not found or is disabled."],

  // workflows
  "workflow.definition_not_found_or_disabled": [V, "A workflow step's job definition was not found or is disabled."],
  "workflow.enqueue_conflicting_retry": [
    C,
    "A workflow run with this idempotency key exists with a different request.",
  ],
  "workflow.legacy_idempotency_snapshot_missing": [
    C,
    "The existing keyed workflow run has no enqueue request snapshot.",
  ],
  "workflow.enqueue_idempotency_unsupported_isolation": [
    V,
    "Keyed workflow enqueue requires READ COMMITTED isolation.",
  ],
  "workflow.already_enqueued": [C, "A workflow run with this idempotency key already exists."],
  "workflow.release_conflict": [C, "The workflow run is being changed concurrently; retry the operation."],
  "workflow.run_not_found": [V, "Workflow run was not found."],
  "workflow.external_step_not_found": [V, "External workflow step was not found."],
  "workflow.external_step_not_external": [V, "Workflow step is not an external step."],
  "workflow.external_step_not_waiting": [V, "External workflow step is not waiting for completion."],
  "workflow.external_step_conflicting_completion_retry": [
    V,
    "External workflow step was already completed with another status.",
  ],
  "workflow.external_step_invalid_terminal_status": [
    V,
    "External step completion status must be SUCCEEDED, FAILED or CANCELED.",
  ],
  "workflow.external_completion_unsupported_isolation": [
    V,
    "External step completion requires READ COMMITTED isolation.",
  ],
  "workflow.terminal_completion_unsupported_isolation": [
    V,
    "Workflow step completion requires READ COMMITTED isolation.",
  ],
  "workflow.cancel_unsupported_isolation": [V, "Workflow cancellation requires READ COMMITTED isolation."],
  "workflow.append_mutation_key_blank": [V, "Append mutation key must not be blank."],
  "workflow.append_terminal_run": [V, "Steps cannot be appended to a finished workflow run."],
  "workflow.append_conflicting_retry": [C, "An append with this mutation key exists with a different request."],
  "workflow.append_window_missing": [V, "The append window step does not exist."],
  "workflow.append_window_not_external": [V, "The append window step is not an external step."],
  "workflow.append_window_not_open": [V, "The append window step is not waiting for external completion."],
  "workflow.append_unsupported_isolation": [V, "Workflow append requires READ COMMITTED isolation."],
  "workflow.retry_run_live": [V, "Only a finished workflow run can be retried; this one is still running."],
  "workflow.retry_run_canceled": [V, "A canceled workflow run cannot be retried."],
  "workflow.retry_nothing_to_retry": [V, "The workflow run has no failed job step to retry."],
  "workflow.retry_step_not_found": [V, "A step named for retry does not exist in the workflow run."],
  "workflow.retry_step_not_failed": [V, "A step named for retry is not a failed job step."],
  "workflow.retry_conflicting_retry": [C, "A mutation with this key exists with a different request."],
  "workflow.retry_invalid_request": [V, "The workflow retry request is invalid."],
  "workflow.retry_unsupported_isolation": [V, "Workflow retry requires READ COMMITTED isolation."],
  "workflow.run_wait_timeout": [C, "The workflow run did not finish within the wait's timeout."],
  "workflow.run_wait_aborted": [C, "Waiting for the workflow run was aborted."],
  "workflow.run_wait_invalid_options": [V, "The workflow run wait options are invalid."],
  "workflow.internal_state": [I, "Workflow state is inconsistent."],
  "workflow.invalid_dag": [V, "Workflow definition is invalid."],
  "workflow.step_organization_mismatch": [
    V,
    "A workflow step belongs to its run's organization; it cannot name another one.",
  ],
  "workflow.invalid_dag_empty": [V, "Workflow must have at least one step."],
  "workflow.invalid_dag_too_many_steps": [V, "Workflow has more steps than the limit."],
  "workflow.invalid_dag_workflow_type_blank": [V, "Workflow type must not be blank."],
  "workflow.invalid_dag_step_key_blank": [V, "Workflow step key must not be blank."],
  "workflow.invalid_dag_job_type_blank": [V, "Workflow job step needs a non-blank job type."],
  "workflow.invalid_dag_idempotency_key_blank": [V, "Workflow idempotency key must not be blank."],
  "workflow.invalid_dag_step_max_attempts_non_positive": [V, "Workflow step max attempts must be positive."],
  "workflow.invalid_dag_step_timeout_seconds_non_positive": [V, "Workflow step timeout must be positive."],
  "workflow.invalid_dag_step_priority_out_of_range": [V, "Workflow step priority must be a 32-bit integer."],
  "workflow.invalid_dag_step_max_attempts_out_of_range": [V, "Workflow step max attempts must be a 32-bit integer."],
  "workflow.invalid_dag_step_timeout_seconds_out_of_range": [V, "Workflow step timeout must be a 32-bit integer."],
  "workflow.invalid_dag_step_stage_invalid": [V, "Workflow step stage is not a known job stage."],
  "workflow.invalid_dag_step_concurrency_key_blank": [V, "Workflow step concurrency key must not be blank."],
  "workflow.invalid_dag_step_execution_kind_invalid": [V, "Workflow step execution kind must be JOB or EXTERNAL."],
  "workflow.invalid_dag_external_step_job_type_not_allowed": [V, "External workflow steps cannot have a job type."],
  "workflow.invalid_dag_external_step_queue_settings_not_allowed": [
    V,
    "External workflow steps cannot have queue settings.",
  ],
  "workflow.invalid_dag_dependency_step_key_blank": [V, "Workflow dependency step key must not be blank."],
  "workflow.invalid_dag_dependency_release_mode_invalid": [
    V,
    "Workflow dependency release mode must be ON_SUCCESS or ON_TERMINAL.",
  ],
  "workflow.invalid_dag_duplicate_step_key": [V, "Workflow step keys must be unique."],
  "workflow.invalid_dag_missing_dependency": [V, "Workflow step depends on a step that does not exist."],
  "workflow.invalid_dag_self_dependency": [V, "Workflow step cannot depend on itself."],
  "workflow.invalid_dag_duplicate_dependency": [V, "Workflow step lists the same prerequisite twice."],
  "workflow.invalid_dag_cycle": [V, "Workflow dependencies contain a cycle."],
  "workflow.invalid_dag_unknown_target_step": [V, "Workflow dependency target step has not been added."],
  "workflow.invalid_dag_unknown_job_type": [V, "Workflow step uses a job type the catalog does not know."],

  // catalog and registry
  "catalog.invalid_job_type": [V, "Catalog job type is invalid."],
  "catalog.duplicate_job_type": [V, "Job type is already registered in the catalog."],
  "catalog.handler_job_type_mismatch": [V, "Handler job type does not match the catalog entry."],
  "catalog.unknown_job_type": [V, "Job type is not registered in the catalog."],
  "catalog.disabled_job_type": [V, "Job type is disabled in the catalog."],
  "catalog.invalid_failure_code": [V, "Retry override failure code must not be blank."],
  "catalog.invalid_retry_delay": [V, "Retry override delay must be positive."],
  "catalog.invalid_exact_sync_scope": [V, "Exact sync scope is invalid."],
  "catalog.empty_exact_sync_catalog": [V, "Exact sync needs a non-empty catalog."],
  "catalog.job_type_outside_exact_sync_scope": [V, "A catalog job type lies outside the exact sync scope."],
  "catalog.active_schedule_for_absent_job_type": [
    C,
    "An active schedule references a job type absent from the catalog.",
  ],
  "catalog.active_schedule_for_disabled_job_type": [C, "An active schedule references a job type being disabled."],

  // retention
  "retention.invalid_input": [V, "Retention parameters are invalid."],

  // runtime
  "config.invalid": [V, "Runtime configuration is invalid."],
  "runtime.missing_registry": [V, "The supervisor needs handlers for its worker and reaper."],
  "runtime.mixed_registry_sources": [V, "Use either a registry or a catalog, not both."],
  "runtime.already_started": [V, "The supervisor has already been started."],
  "runtime.task_failed": [I, "A runtime loop failed."],
  "runtime.task_exited_unexpectedly": [I, "A runtime loop exited before shutdown was requested."],
  "runtime.shutdown_timeout": [I, "Runtime did not shut down within the deadline."],

  // schema and migrations
  "schema.uninitialized": [I, "The runledger schema has not been migrated."],
  "schema.behind": [I, "The runledger schema is missing migrations."],
  "schema.ahead": [I, "The database has runledger migrations this version does not know."],
  "schema.diverged": [I, "The runledger migration history does not match this version."],
  "schema.migration_failed": [I, "Applying runledger migrations failed."],

  // database errors classified in store/errors.ts
  "db.unique_violation": [C, "Resource already exists."],
  "db.related_resource_missing": [V, "A related resource does not exist."],
  "db.related_resource_still_referenced": [V, "The resource is still referenced."],
  "db.business_rule_violation": [V, "Request violates a business rule."],
  "db.required_field_missing": [V, "A required field is missing."],
  "db.invalid_input": [V, "The request contains a value the database cannot store."],
  "db.permission_denied": [F, "Database permission denied."],
  "db.connection_failed": [I, "Database connection failed."],
  "db.database_not_found": [I, "The database named in the connection settings does not exist."],
  "db.authentication_failed": [F, "The database refused the connection's role or credentials."],
  "db.invalid_url": [V, "The database connection URL is invalid."],
  "db.listen_unavailable": [
    V,
    "This handle goes through a transaction-mode pooler and has no direct connection for LISTEN (createDb listenUrl).",
  ],
  "db.embedded_unavailable": [
    V,
    "The embedded database needs the optional package @electric-sql/pglite (npm install @electric-sql/pglite).",
  ],
  "db.lock_timeout": [C, "The operation timed out waiting for a lock; retry it."],
  "db.serialization_failure": [C, "The operation conflicted with a concurrent change; retry it."],
  "db.query_failed": [I, "Database operation failed."],
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Failure codes the worker (and, for an expired lease, the reaper) records on attempts: data, not thrown errors. */
export const WORKER_FAILURE_CODES = {
  handlerPanic: "job.handler_panic",
  timeoutExceeded: "job.timeout_exceeded",
  handlerNotRegistered: "job.handler_not_registered",
  leaseExpired: "job.lease_expired",
  /** A handler's `JobFailure` carried a code that cannot be recorded (blank, NUL, too long). */
  invalidFailure: "job.invalid_failure",
  /** A handler's completion value (progress, checkpoint) could not be recorded. */
  invalidCompletion: "job.invalid_completion",
} as const;

export interface RunledgerErrorOptions {
  /** Structured, client-safe facts (step keys, cycle paths, counts). Never payloads or SQL. */
  details?: Record<string, unknown>;
  /**
   * A client-safe sentence appended to the catalog's message when the fixed text alone would not
   * say what to fix (the variable that is wrong, the migration that is foreign). Never values,
   * payloads or SQL.
   */
  reason?: string;
  /** Server-side diagnostics; may mention SQL or values. Never shown to clients. */
  internal?: string;
  cause?: unknown;
}

export class RunledgerError extends Error {
  override readonly name: string = "RunledgerError";
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly details: Readonly<Record<string, unknown>>;
  readonly #internal: string | undefined;

  constructor(code: ErrorCode, options: RunledgerErrorOptions = {}) {
    const [category, message] = ERROR_CATALOG[code];
    super(
      options.reason === undefined ? message : `${message} ${options.reason}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.category = category;
    this.details = Object.freeze({ ...options.details });
    this.#internal = options.internal;
  }

  /** The full story for server logs: code, client message and internal detail. */
  internalMessage(): string {
    return this.#internal === undefined
      ? `${this.code}: ${this.message}`
      : `${this.code}: ${this.message} (${this.#internal})`;
  }

  toJSON(): {
    name: string;
    code: ErrorCode;
    category: ErrorCategory;
    message: string;
    details: Record<string, unknown>;
  } {
    return {
      name: this.name,
      code: this.code,
      category: this.category,
      message: this.message,
      details: { ...this.details },
    };
  }
}

/** A database operation failed; `sqlstate` and `constraint` are kept for branching and logs. */
export class QueryError extends RunledgerError {
  override readonly name: string = "QueryError";
  readonly sqlstate: string | undefined;
  readonly constraint: string | undefined;

  constructor(
    code: ErrorCode,
    options: RunledgerErrorOptions & { sqlstate?: string | undefined; constraint?: string | undefined } = {},
  ) {
    super(code, options);
    this.sqlstate = options.sqlstate;
    this.constraint = options.constraint;
  }
}

export const SCHEMA_STATES = ["uninitialized", "behind", "ahead", "diverged", "current"] as const;
export type SchemaState = (typeof SCHEMA_STATES)[number];

/** The database's migration history does not match the migrations this package ships. */
export class SchemaCompatibilityError extends RunledgerError {
  override readonly name: string = "SchemaCompatibilityError";
  readonly state: Exclude<SchemaState, "current">;

  constructor(state: Exclude<SchemaState, "current">, options: RunledgerErrorOptions = {}) {
    super(`schema.${state}`, options);
    this.state = state;
  }
}

export function isRunledgerError(value: unknown, code?: ErrorCode): value is RunledgerError {
  return value instanceof RunledgerError && (code === undefined || value.code === code);
}
