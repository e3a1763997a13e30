import { type ErrorCode, QueryError, RunledgerError, SchemaCompatibilityError } from "../core/index.ts";

/**
 * The one place where driver errors become `QueryError`s. Known constraint names win, then the
 * SQLSTATE class. The client-facing message comes from the code's catalog entry; the driver's
 * text (which may quote SQL, parameters or row values) is kept only in `internalMessage()`.
 */

const CONSTRAINT_CODES: Record<string, ErrorCode> = {
  uq_job_queue_type_idempotency_org: "job.already_enqueued",
  uq_job_queue_type_idempotency_global: "job.already_enqueued",
  uq_workflow_runs_type_idempotency_org: "workflow.already_enqueued",
  uq_workflow_runs_type_idempotency_global: "workflow.already_enqueued",
  job_runtime_configs_job_type_job_definitions_job_type_fk: "job.definition_not_found",
  ck_job_queue_progress: "job.invalid_progress",
  ck_job_runtime_configs_config_object: "job.invalid_runtime_config",
  ck_job_runtime_configs_schema_version_positive: "job.invalid_runtime_config",
};

const SQLSTATE_CODES: Record<string, ErrorCode> = {
  "23505": "db.unique_violation",
  "23503": "db.related_resource_missing",
  "23001": "db.related_resource_still_referenced",
  "23514": "db.business_rule_violation",
  "23502": "db.required_field_missing",
  "42501": "db.permission_denied",
  "40001": "db.serialization_failure",
  "40P01": "db.serialization_failure",
  "55P03": "db.lock_timeout",
  "57P01": "db.connection_failed",
  "57P02": "db.connection_failed",
  "57P03": "db.connection_failed",
  // Raised while connecting: the URL names a database or role the server does not have.
  "3D000": "db.database_not_found",
  "28000": "db.authentication_failed",
  "28P01": "db.authentication_failed",
};

/**
 * Undefined table, schema, type or function: every runledger statement names its objects in
 * schema `runledger`, so when one of them is missing the database has not been migrated.
 */
const UNDEFINED_OBJECT = new Set(["42P01", "3F000", "42704", "42883"]);

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

interface DriverError {
  code?: unknown;
  constraint_name?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** Walk `cause` links (drizzle wraps the driver error and puts parameters in its own message). */
function driverError(error: unknown): DriverError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current != null; depth++) {
    if (typeof current === "object" && typeof (current as DriverError).code === "string") return current as DriverError;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function classify(sqlstate: string | undefined, constraint: string | undefined): ErrorCode {
  if (constraint !== undefined && CONSTRAINT_CODES[constraint] !== undefined) return CONSTRAINT_CODES[constraint];
  if (sqlstate === undefined) return "db.query_failed";
  if (CONNECTION_CODES.has(sqlstate) || sqlstate.startsWith("08")) return "db.connection_failed";
  if (SQLSTATE_CODES[sqlstate] !== undefined) return SQLSTATE_CODES[sqlstate];
  if (sqlstate.startsWith("22")) return "db.invalid_input";
  return "db.query_failed";
}

/** The database name in `database "x" does not exist`: the caller's own setting, safe to repeat. */
function missingDatabase(message: string): Record<string, unknown> {
  const name = /database "([^"]*)"/.exec(message)?.[1];
  return name === undefined ? {} : { database: name };
}

/**
 * What a translated error keeps of the driver's error as its `cause`: the SQLSTATE, the constraint
 * and the driver's error class, never the statement, its bound parameters or row values (drizzle's
 * wrapper quotes the statement and every parameter in its message, so keeping it let
 * `util.inspect(error)` print a payload). The driver's own text stays in `internalMessage()`.
 */
export class DriverFailure extends Error {
  override readonly name = "DriverFailure";
  readonly code: string | undefined;
  readonly constraint: string | undefined;

  constructor(sqlstate: string | undefined, constraint: string | undefined, driverClass: string) {
    super(
      `${driverClass}${sqlstate === undefined ? "" : ` (SQLSTATE ${sqlstate})`}${constraint === undefined ? "" : ` on ${constraint}`}`,
    );
    this.code = sqlstate;
    this.constraint = constraint;
  }
}

function causeOf(error: unknown, sqlstate: string | undefined, constraint: string | undefined): DriverFailure {
  const driver = driverError(error) ?? error;
  const driverClass =
    driver instanceof Error
      ? driver.constructor.name || driver.name
      : typeof driver === "object"
        ? "object"
        : typeof driver;
  return new DriverFailure(sqlstate, constraint, driverClass);
}

/**
 * Turn anything thrown by a query into a `RunledgerError`. Runledger errors pass through;
 * a missing runledger object becomes `schema.uninitialized` (a `SchemaCompatibilityError`);
 * unclassifiable failures get `fallback` (default `db.query_failed`).
 */
export function toQueryError(error: unknown, fallback: ErrorCode = "db.query_failed"): RunledgerError {
  if (error instanceof RunledgerError) return error;
  const driver = driverError(error);
  const sqlstate = typeof driver?.code === "string" ? driver.code : undefined;
  const constraintName = driver?.constraint_name ?? driver?.constraint;
  const constraint = typeof constraintName === "string" ? constraintName : undefined;
  const internal = String(driver?.message ?? (error instanceof Error ? error.message : String(error)));
  if (sqlstate !== undefined && UNDEFINED_OBJECT.has(sqlstate) && internal.includes("runledger")) {
    return new SchemaCompatibilityError("uninitialized", {
      details: { hint: "run `npx runledger migrate` or `migrate(db)` against this database" },
      internal,
      cause: causeOf(error, sqlstate, constraint),
    });
  }
  const code = classify(sqlstate, constraint);
  return new QueryError(code === "db.query_failed" ? fallback : code, {
    sqlstate,
    constraint,
    details: code === "db.database_not_found" ? missingDatabase(internal) : undefined,
    internal,
    cause: causeOf(error, sqlstate, constraint),
  });
}

/**
 * Run `work`, translating whatever it throws with `toQueryError`: the one wrapper for a store
 * operation's statements. A failure no constraint or SQLSTATE explains gets `fallback` (default
 * `db.query_failed`); a `RunledgerError` thrown inside passes through unchanged.
 */
export async function translating<T>(work: () => Promise<T>, fallback?: ErrorCode): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toQueryError(error, fallback);
  }
}
