import { pgSchema, timestamp } from "drizzle-orm/pg-core";
import {
  CLAIM_ORIGINS,
  JOB_EVENT_TYPES,
  JOB_FAILURE_KINDS,
  JOB_STATUSES,
  WORKFLOW_DEPENDENCY_RELEASE_MODES,
  WORKFLOW_RUN_STATUSES,
  WORKFLOW_STEP_EXECUTION_KINDS,
  WORKFLOW_STEP_STATUSES,
} from "../../core/index.ts";

/** Every runledger object lives in this PostgreSQL schema; nothing goes to `public`. */
export const runledger = pgSchema("runledger");

export const jobStatus = runledger.enum("job_status", JOB_STATUSES);
export const jobEventType = runledger.enum("job_event_type", JOB_EVENT_TYPES);
export const jobFailureKind = runledger.enum("job_failure_kind", JOB_FAILURE_KINDS);
export const workflowRunStatus = runledger.enum("workflow_run_status", WORKFLOW_RUN_STATUSES);
export const workflowStepStatus = runledger.enum("workflow_step_status", WORKFLOW_STEP_STATUSES);
export const workflowDependencyReleaseMode = runledger.enum(
  "workflow_dependency_release_mode",
  WORKFLOW_DEPENDENCY_RELEASE_MODES,
);
export const workflowStepExecutionKind = runledger.enum("workflow_step_execution_kind", WORKFLOW_STEP_EXECUTION_KINDS);
export const claimOrigin = runledger.enum("claim_origin", CLAIM_ORIGINS);

/** A timestamptz column read back as a `Date`. */
export const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * `created_at` / `updated_at` pair. A BEFORE UPDATE trigger keeps `updated_at` current on
 * job_definitions, job_runtime_configs, job_schedules, workflow_runs, workflow_steps and
 * workflow_run_mutations (drizzle/0001_triggers_and_metrics_view.sql). job_queue and
 * flow_key_limits have none: their statements set it themselves (a row trigger on the claim and
 * completion path costs throughput).
 */
export const timestamps = {
  createdAt: tstz("created_at").notNull().defaultNow(),
  updatedAt: tstz("updated_at").notNull().defaultNow(),
};
