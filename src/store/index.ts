export * from "./admin/capped.ts";
export * from "./admin/health.ts";
export * from "./admin/search.ts";
export * from "./db.ts";
export * from "./definitions.ts";
export * from "./errors.ts";
export * from "./flow/admin.ts";
export type { ClaimFairness } from "./flow/claim.ts";
export * from "./jobs/bulk.ts";
export * from "./jobs/cancel.ts";
export { type EnqueuedJob, enqueueJob, enqueueJobs, type JobEnqueue, type JobKeyOption } from "./jobs/enqueue.ts";
export * from "./jobs/lookups.ts";
export * from "./jobs/queue-depth.ts";
export * from "./jobs/reads.ts";
export type { JobRecord } from "./jobs/record.ts";
export * from "./logs.ts";
export * from "./migrate.ts";
export * from "./notify.ts";
export { createEmbeddedDb, type PGliteClient } from "./pglite.ts";
export { queryRows } from "./query.ts";
export {
  DEFAULT_PURGE_BATCH,
  MAX_PURGE_BATCH,
  type PurgeBounds,
  type PurgeCounts,
} from "./retention/batch.ts";
export * from "./retention/purge.ts";
export * from "./retention/purge-runs.ts";
export type { Page } from "./rows.ts";
export * from "./runtime-configs.ts";
export * from "./schedules/admin.ts";
export * from "./schedules/backfill.ts";
export type { JobScheduleRecord } from "./schedules/record.ts";
export * as schema from "./schema/index.ts";
export { scopeCondition } from "./sql/scope.ts";
// The telemetry primitives the runtime shares with the store's enqueue (OpenTelemetry API only).
export {
  ATTR as TELEMETRY_ATTRIBUTES,
  activeMeter,
  activeTracer,
  clientOperationDuration,
  DURATION_BUCKETS,
  formatTraceContext,
  INSTRUMENTATION_NAME,
  instrumentsOf,
  MESSAGING_SYSTEM,
} from "./telemetry.ts";
export * from "./workflows/append.ts";
export * from "./workflows/cancel.ts";
export { type EnqueuedWorkflowRun, enqueueWorkflowRun } from "./workflows/enqueue.ts";
export * from "./workflows/external.ts";
export * from "./workflows/reads.ts";
export type { WorkflowRunRecord, WorkflowStepDependencyRecord, WorkflowStepRecord } from "./workflows/records.ts";
export * from "./workflows/retry.ts";
export * from "./workflows/run-traces.ts";
export * from "./workflows/step-updates.ts";
export * from "./workflows/wait.ts";
// The worker's lifecycle (claim, heartbeat, complete, reap, fire schedules) is `runledger/store/worker`.
