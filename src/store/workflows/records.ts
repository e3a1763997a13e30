import type { WorkflowDependencyReleaseMode, WorkflowRunStatus, WorkflowStepStatus } from "../../core/index.ts";
import { toDate, toDateOrNull } from "../rows.ts";
import type { FinishedRunRow } from "../sql/workflows/reads.ts";
import type { WorkflowEdgeWithKeysRow, WorkflowRunRow, WorkflowStepRow } from "../sql/workflows/rows.ts";

export interface WorkflowRunRecord {
  id: string;
  workflowType: string;
  organizationId: string | null;
  status: WorkflowRunStatus;
  idempotencyKey: string | null;
  metadata: unknown;
  startedAt: Date;
  finishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WorkflowStepRecord {
  id: string;
  workflowRunId: string;
  stepKey: string;
  executionKind: "JOB" | "EXTERNAL";
  jobType: string | null;
  priority: number | null;
  maxAttempts: number | null;
  timeoutSeconds: number | null;
  stage: string | null;
  organizationId: string | null;
  payload: unknown;
  status: WorkflowStepStatus;
  jobId: string | null;
  releasedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  dependencyCountTotal: number;
  dependencyCountPending: number;
  dependencyCountUnsatisfied: number;
  statusReason: string | null;
  lastErrorCode: string | null;
  lastErrorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WorkflowStepDependencyRecord {
  workflowRunId: string;
  prerequisiteStepId: string;
  prerequisiteStepKey: string;
  dependentStepId: string;
  dependentStepKey: string;
  releaseMode: WorkflowDependencyReleaseMode;
  createdAt: Date;
}

export function runFromRow(row: WorkflowRunRow): WorkflowRunRecord {
  return {
    id: row.id,
    workflowType: row.workflow_type,
    organizationId: row.organization_id ?? null,
    status: row.status,
    idempotencyKey: row.idempotency_key ?? null,
    metadata: row.metadata,
    startedAt: toDate(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function stepFromRow(row: WorkflowStepRow): WorkflowStepRecord {
  return {
    id: row.id,
    workflowRunId: row.workflow_run_id,
    stepKey: row.step_key,
    executionKind: row.execution_kind,
    jobType: row.job_type ?? null,
    priority: row.priority ?? null,
    maxAttempts: row.max_attempts ?? null,
    timeoutSeconds: row.timeout_seconds ?? null,
    stage: row.stage ?? null,
    organizationId: row.organization_id ?? null,
    payload: row.payload,
    status: row.status,
    jobId: row.job_id ?? null,
    releasedAt: toDateOrNull(row.released_at),
    startedAt: toDateOrNull(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    dependencyCountTotal: row.dependency_count_total,
    dependencyCountPending: row.dependency_count_pending,
    dependencyCountUnsatisfied: row.dependency_count_unsatisfied,
    statusReason: row.status_reason ?? null,
    lastErrorCode: row.last_error_code ?? null,
    lastErrorMessage: row.last_error_message ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function dependencyFromRow(row: WorkflowEdgeWithKeysRow): WorkflowStepDependencyRecord {
  return {
    workflowRunId: row.workflow_run_id,
    prerequisiteStepId: row.prerequisite_step_id,
    prerequisiteStepKey: row.prerequisite_step_key,
    dependentStepId: row.dependent_step_id,
    dependentStepKey: row.dependent_step_key,
    releaseMode: row.release_mode,
    createdAt: toDate(row.created_at),
  };
}

/** A finished workflow run as its telemetry span needs it. */
export interface FinishedWorkflowRun {
  id: string;
  workflowType: string;
  organizationId: string | null;
  status: WorkflowRunStatus;
  createdAt: Date;
  finishedAt: Date;
  /** The enqueue's stored W3C trace context, or null when it was not traced. */
  traceContext: string | null;
}

export function finishedRunFromRow(row: FinishedRunRow): FinishedWorkflowRun {
  return {
    id: row.id,
    workflowType: row.workflow_type,
    organizationId: row.organization_id,
    status: row.status,
    createdAt: toDate(row.created_at),
    finishedAt: toDate(row.finished_at),
    traceContext: row.trace_context,
  };
}
