import type { WorkflowDependencyReleaseMode, WorkflowRunStatus, WorkflowStepStatus } from "../../core/index.ts";
import type { RawRow } from "../rows.ts";

import { toDate, toDateOrNull } from "../rows.ts";

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

export function runFromRow(row: RawRow): WorkflowRunRecord {
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

const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));

export function stepFromRow(row: RawRow): WorkflowStepRecord {
  return {
    id: row.id,
    workflowRunId: row.workflow_run_id,
    stepKey: row.step_key,
    executionKind: row.execution_kind,
    jobType: row.job_type ?? null,
    priority: num(row.priority),
    maxAttempts: num(row.max_attempts),
    timeoutSeconds: num(row.timeout_seconds),
    stage: row.stage ?? null,
    organizationId: row.organization_id ?? null,
    payload: row.payload,
    status: row.status,
    jobId: row.job_id ?? null,
    releasedAt: toDateOrNull(row.released_at),
    startedAt: toDateOrNull(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    dependencyCountTotal: Number(row.dependency_count_total),
    dependencyCountPending: Number(row.dependency_count_pending),
    dependencyCountUnsatisfied: Number(row.dependency_count_unsatisfied),
    statusReason: row.status_reason ?? null,
    lastErrorCode: row.last_error_code ?? null,
    lastErrorMessage: row.last_error_message ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
