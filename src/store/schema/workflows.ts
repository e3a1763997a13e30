import { sql } from "drizzle-orm";
import { check, index, integer, jsonb, primaryKey, text, unique, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import {
  runledger,
  timestamps,
  tstz,
  workflowDependencyReleaseMode,
  workflowRunStatus,
  workflowStepExecutionKind,
  workflowStepStatus,
} from "./base.ts";

/** One row per workflow run; its status is derived from its steps. */
export const workflowRuns = runledger.table(
  "workflow_runs",
  {
    id: uuid("id").primaryKey(),
    workflowType: text("workflow_type").notNull(),
    organizationId: uuid("organization_id"),
    status: workflowRunStatus("status").notNull().default("RUNNING"),
    idempotencyKey: text("idempotency_key"),
    metadata: jsonb("metadata").$type<unknown>().notNull().default({}),
    enqueueRequest: jsonb("enqueue_request").$type<unknown>(),
    // W3C trace context of the enqueue; every step job released later copies it.
    traceContext: text("trace_context"),
    startedAt: tstz("started_at").notNull().defaultNow(),
    finishedAt: tstz("finished_at"),
    ...timestamps,
  },
  (t) => [
    check("ck_workflow_runs_workflow_type_not_blank", sql`btrim(${t.workflowType}) <> ''`),
    check(
      "ck_workflow_runs_idempotency_key_not_blank",
      sql`${t.idempotencyKey} is null or btrim(${t.idempotencyKey}) <> ''`,
    ),
    check(
      "ck_workflow_runs_idempotency_enqueue_request",
      sql`${t.idempotencyKey} is null or ${t.enqueueRequest} is not null`,
    ),
    uniqueIndex("uq_workflow_runs_type_idempotency_org")
      .on(t.workflowType, t.organizationId, t.idempotencyKey)
      .where(sql`idempotency_key is not null and organization_id is not null`),
    uniqueIndex("uq_workflow_runs_type_idempotency_global")
      .on(t.workflowType, t.idempotencyKey)
      .where(sql`idempotency_key is not null and organization_id is null`),
    index("idx_workflow_runs_status_created").on(t.status, t.createdAt),
    index("idx_workflow_runs_created").on(t.createdAt, t.id),
  ],
);

/*
 * One row per step of a run: a job to enqueue or an external gate, with dependency counters.
 * Its run and its job type are not foreign keys either: steps are written only with their run
 * (in its enqueue statement, or appended under its lock) and their definitions share-locked, and
 * the two checks per step were ~2/3 of a 1→20→1 enqueue's server time (backend CPU per enqueue,
 * 400 in a row: ~1.4–1.6 → ~0.9–1.0 ms without them). Deleting a run still deletes its steps,
 * and deleting or renaming a definition that steps use still fails with foreign_key_violation
 * (triggers, see drizzle/0002).
 */
export const workflowSteps = runledger.table(
  "workflow_steps",
  {
    id: uuid("id").primaryKey(),
    workflowRunId: uuid("workflow_run_id").notNull(),
    stepKey: text("step_key").notNull(),
    executionKind: workflowStepExecutionKind("execution_kind").notNull().default("JOB"),
    jobType: text("job_type"),
    priority: integer("priority"),
    maxAttempts: integer("max_attempts"),
    timeoutSeconds: integer("timeout_seconds"),
    stage: text("stage"),
    organizationId: uuid("organization_id"),
    payload: jsonb("payload").$type<unknown>().notNull().default({}),
    status: workflowStepStatus("status").notNull().default("BLOCKED"),
    /*
     * A step and its job point at each other without foreign keys: both links are written by the
     * statement that inserts the job, and the two checks per released step were sequential scans
     * with empty-table statistics (~0.2 ms per step after 300 runs). Deleting either row nulls the
     * other's link, as ON DELETE SET NULL did (statement triggers, see drizzle/0002).
     */
    jobId: uuid("job_id"),
    releasedAt: tstz("released_at"),
    startedAt: tstz("started_at"),
    finishedAt: tstz("finished_at"),
    dependencyCountTotal: integer("dependency_count_total").notNull().default(0),
    dependencyCountPending: integer("dependency_count_pending").notNull().default(0),
    dependencyCountUnsatisfied: integer("dependency_count_unsatisfied").notNull().default(0),
    statusReason: text("status_reason"),
    lastErrorCode: text("last_error_code"),
    lastErrorMessage: text("last_error_message"),
    ...timestamps,
  },
  (t) => [
    unique("uq_workflow_steps_run_step_key").on(t.workflowRunId, t.stepKey),
    check("ck_workflow_steps_step_key_not_blank", sql`btrim(${t.stepKey}) <> ''`),
    check(
      "chk_workflow_steps_execution_shape",
      sql`(${t.executionKind} = 'JOB' and ${t.jobType} is not null and ${t.priority} is not null and ${t.maxAttempts} is not null and ${t.timeoutSeconds} is not null and ${t.stage} is not null)
        or (${t.executionKind} = 'EXTERNAL' and ${t.jobType} is null and ${t.priority} is null and ${t.maxAttempts} is null and ${t.timeoutSeconds} is null and ${t.stage} is null and ${t.jobId} is null)`,
    ),
    check("ck_workflow_steps_max_attempts_positive", sql`${t.maxAttempts} is null or ${t.maxAttempts} > 0`),
    check("ck_workflow_steps_timeout_positive", sql`${t.timeoutSeconds} is null or ${t.timeoutSeconds} > 0`),
    check(
      "ck_workflow_steps_dependency_counts",
      sql`${t.dependencyCountTotal} >= 0 and ${t.dependencyCountPending} >= 0 and ${t.dependencyCountUnsatisfied} >= 0 and ${t.dependencyCountPending} <= ${t.dependencyCountTotal} and ${t.dependencyCountUnsatisfied} <= ${t.dependencyCountTotal}`,
    ),
    index("idx_workflow_steps_run_status_created").on(t.workflowRunId, t.status, t.createdAt),
    uniqueIndex("uq_workflow_steps_job_id").on(t.jobId).where(sql`job_id is not null`),
  ],
);

/*
 * Edges of a run's DAG. Both ends are steps of the run, but without foreign keys: the only writer
 * inserts a run's edges in the statement that inserts their steps (or, appending, after reading
 * the run's steps under its lock), and the two referential checks were a trigger per edge on the
 * enqueue hot path. With the planner's statistics from an empty table (the bench ANALYZEs before
 * it starts) each check became a sequential scan of the steps table: 80 checks per 1→20→1 run,
 * ~18 of ~21 ms server time per enqueue after 300 runs, ~3 ms without them. Deleting a step still
 * deletes its edges (a statement trigger, see drizzle/0002).
 */
export const workflowStepDependencies = runledger.table(
  "workflow_step_dependencies",
  {
    workflowRunId: uuid("workflow_run_id").notNull(),
    prerequisiteStepId: uuid("prerequisite_step_id").notNull(),
    dependentStepId: uuid("dependent_step_id").notNull(),
    releaseMode: workflowDependencyReleaseMode("release_mode").notNull().default("ON_TERMINAL"),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({
      name: "pk_workflow_step_dependencies",
      columns: [t.workflowRunId, t.prerequisiteStepId, t.dependentStepId],
    }),
    check("ck_workflow_step_dependencies_no_self_edge", sql`${t.prerequisiteStepId} <> ${t.dependentStepId}`),
    index("idx_workflow_step_dependencies_prerequisite").on(t.prerequisiteStepId),
    index("idx_workflow_step_dependencies_dependent").on(t.dependentStepId),
  ],
);

/** Append-only ledger of `appendWorkflowSteps` calls, keyed for idempotent retries. */
export const workflowRunMutations = runledger.table(
  "workflow_run_mutations",
  {
    id: uuid("id").primaryKey(),
    workflowRunId: uuid("workflow_run_id")
      .notNull()
      .references(() => workflowRuns.id, { onDelete: "cascade" }),
    mutationKey: text("mutation_key").notNull(),
    metadata: jsonb("metadata").$type<unknown>().notNull().default({}),
    request: jsonb("request").$type<unknown>().notNull(),
    ...timestamps,
  },
  (t) => [
    unique("uq_workflow_run_mutations_run_key").on(t.workflowRunId, t.mutationKey),
    check("ck_workflow_run_mutations_key_not_blank", sql`btrim(${t.mutationKey}) <> ''`),
  ],
);
