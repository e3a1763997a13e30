import type { JobStatus } from "../../core/index.ts";
import type { RawRow } from "../rows.ts";
import { toDate, toDateOrNull, toNumberOrNull } from "../rows.ts";
import type { jobQueue } from "../schema/index.ts";

/** A job as the queue stores it (everything but the idempotency snapshot). */
export interface JobRecord {
  id: string;
  jobType: string;
  organizationId: string | null;
  payload: unknown;
  status: JobStatus;
  priority: number;
  runNumber: number;
  attempt: number;
  maxAttempts: number;
  timeoutSeconds: number;
  nextRunAt: Date;
  leaseExpiresAt: Date | null;
  lastHeartbeatAt: Date | null;
  /** The worker holding the lease; null unless LEASED (the attempts read keeps who ran each attempt). */
  workerId: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  stage: string;
  progressDone: number | null;
  progressTotal: number | null;
  progressPct: number | null;
  checkpoint: unknown;
  idempotencyKey: string | null;
  statusReason: string | null;
  lastErrorCode: string | null;
  lastErrorMessage: string | null;
  workflowStepId: string | null;
  /** The schedule that fired this job, and the slot it fired for; null otherwise. */
  scheduleId: string | null;
  scheduledFor: Date | null;
  /** The job key it holds (see enqueue's `jobKey`); null once handed to a newer job. */
  jobKey: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A `JobRecord` from a row the query builder selected from `job_queue`. */
export function jobFromSelected(row: typeof jobQueue.$inferSelect): JobRecord {
  return {
    id: row.id,
    jobType: row.jobType,
    organizationId: row.organizationId,
    payload: row.payload,
    status: row.status,
    priority: row.priority,
    runNumber: row.runNumber,
    attempt: row.attempt,
    maxAttempts: row.maxAttempts,
    timeoutSeconds: row.timeoutSeconds,
    nextRunAt: row.nextRunAt,
    leaseExpiresAt: row.leaseExpiresAt,
    lastHeartbeatAt: row.lastHeartbeatAt,
    workerId: row.status === "LEASED" ? row.workerId : null,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    stage: row.stage,
    progressDone: row.progressDone,
    progressTotal: row.progressTotal,
    progressPct: row.progressPct,
    checkpoint: row.checkpoint ?? null,
    idempotencyKey: row.idempotencyKey,
    statusReason: row.statusReason,
    lastErrorCode: row.lastErrorCode,
    lastErrorMessage: row.lastErrorMessage,
    workflowStepId: row.workflowStepId,
    scheduleId: row.scheduleId,
    scheduledFor: row.scheduledFor,
    jobKey: row.jobKey,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The fence every worker write carries: which run, attempt and worker holds the lease. */
export interface LeaseIdentity {
  jobId: string;
  runNumber: number;
  attempt: number;
  workerId: string;
}

/** Map a raw `job_queue` row (snake_case, driver types) to a `JobRecord`. */
export function jobFromRow(row: RawRow): JobRecord {
  return {
    id: row.id,
    jobType: row.job_type,
    organizationId: row.organization_id ?? null,
    payload: row.payload,
    status: row.status,
    priority: Number(row.priority),
    runNumber: Number(row.run_number),
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    timeoutSeconds: Number(row.timeout_seconds),
    nextRunAt: toDate(row.next_run_at),
    leaseExpiresAt: toDateOrNull(row.lease_expires_at),
    lastHeartbeatAt: toDateOrNull(row.last_heartbeat_at),
    workerId: row.status === "LEASED" ? (row.worker_id ?? null) : null,
    startedAt: toDateOrNull(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    stage: row.stage,
    progressDone: toNumberOrNull(row.progress_done),
    progressTotal: toNumberOrNull(row.progress_total),
    progressPct: toNumberOrNull(row.progress_pct),
    checkpoint: row.checkpoint ?? null,
    idempotencyKey: row.idempotency_key ?? null,
    statusReason: row.status_reason ?? null,
    lastErrorCode: row.last_error_code ?? null,
    lastErrorMessage: row.last_error_message ?? null,
    workflowStepId: row.workflow_step_id ?? null,
    scheduleId: row.schedule_id ?? null,
    scheduledFor: toDateOrNull(row.scheduled_for),
    jobKey: row.job_key ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
