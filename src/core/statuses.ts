/**
 * Every status and kind the ledger stores, declared once. The PostgreSQL enum types in
 * `store/schema` are built from these tuples, so TypeScript and the database cannot drift.
 */

export const JOB_STATUSES = ["PENDING", "LEASED", "SUCCEEDED", "DEAD_LETTERED", "CANCELED"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses a job only leaves through `requeueJob`. */
export const TERMINAL_JOB_STATUSES = ["SUCCEEDED", "DEAD_LETTERED", "CANCELED"] as const satisfies readonly JobStatus[];
export type TerminalJobStatus = (typeof TERMINAL_JOB_STATUSES)[number];

export const JOB_EVENT_TYPES = [
  "ENQUEUED",
  "LEASED",
  "HEARTBEAT",
  "STAGE_CHANGED",
  "PROGRESS",
  "RETRY_SCHEDULED",
  "SUCCEEDED",
  "FAILED",
  "DEAD_LETTERED",
  "CANCELED",
  "REQUEUED",
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

export const JOB_FAILURE_KINDS = ["RETRYABLE", "TERMINAL", "PANICKED", "TIMEOUT", "LEASE_EXPIRED"] as const;
export type JobFailureKind = (typeof JOB_FAILURE_KINDS)[number];

/** Failure kinds after which a job may run again within the same run. */
export const RETRYABLE_FAILURE_KINDS = [
  "RETRYABLE",
  "TIMEOUT",
  "LEASE_EXPIRED",
] as const satisfies readonly JobFailureKind[];

/** Informational stage of a job; orthogonal to its status. Stored as plain text. */
export const JOB_STAGES = ["queued", "scheduled", "running", "completed"] as const;
export type JobStage = (typeof JOB_STAGES)[number];

export const WORKFLOW_RUN_STATUSES = [
  "RUNNING",
  "WAITING_FOR_EXTERNAL",
  "SUCCEEDED",
  "COMPLETED_WITH_ERRORS",
  "CANCELED",
] as const;
export type WorkflowRunStatus = (typeof WORKFLOW_RUN_STATUSES)[number];

/** Run statuses no step can leave without an operator (a retry reopens COMPLETED_WITH_ERRORS). */
export const TERMINAL_WORKFLOW_RUN_STATUSES = [
  "SUCCEEDED",
  "COMPLETED_WITH_ERRORS",
  "CANCELED",
] as const satisfies readonly WorkflowRunStatus[];
export type TerminalWorkflowRunStatus = (typeof TERMINAL_WORKFLOW_RUN_STATUSES)[number];

export const WORKFLOW_STEP_STATUSES = [
  "BLOCKED",
  "WAITING_FOR_EXTERNAL",
  "ENQUEUED",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "CANCELED",
] as const;
export type WorkflowStepStatus = (typeof WORKFLOW_STEP_STATUSES)[number];

export const TERMINAL_WORKFLOW_STEP_STATUSES = [
  "SUCCEEDED",
  "FAILED",
  "CANCELED",
] as const satisfies readonly WorkflowStepStatus[];

export const WORKFLOW_DEPENDENCY_RELEASE_MODES = ["ON_TERMINAL", "ON_SUCCESS"] as const;
export type WorkflowDependencyReleaseMode = (typeof WORKFLOW_DEPENDENCY_RELEASE_MODES)[number];

export const WORKFLOW_STEP_EXECUTION_KINDS = ["JOB", "EXTERNAL"] as const;
export type WorkflowStepExecutionKind = (typeof WORKFLOW_STEP_EXECUTION_KINDS)[number];

/** How an attempt was claimed: directly, or by a worker that must persist `running` before executing. */
export const CLAIM_ORIGINS = ["DIRECT", "WORKER_PRESTART"] as const;
export type ClaimOrigin = (typeof CLAIM_ORIGINS)[number];

export function isTerminalJobStatus(status: JobStatus): boolean {
  return (TERMINAL_JOB_STATUSES as readonly JobStatus[]).includes(status);
}

export function isRetryableFailureKind(kind: JobFailureKind): boolean {
  return (RETRYABLE_FAILURE_KINDS as readonly JobFailureKind[]).includes(kind);
}

export function isTerminalWorkflowStepStatus(status: WorkflowStepStatus): boolean {
  return (TERMINAL_WORKFLOW_STEP_STATUSES as readonly WorkflowStepStatus[]).includes(status);
}

/** True when `value` is one of `JOB_STAGES` (useful for input that did not come through the types). */
export function isJobStage(value: unknown): value is JobStage {
  return (JOB_STAGES as readonly unknown[]).includes(value);
}
