import type { DbRow } from "../rows.ts";
import { toDate, toDateOrNull, toNumberOrNull } from "../rows.ts";
import type { jobQueue } from "../schema/index.ts";

/** A `job_queue` row as the schema types it (camelCase), for the record's field types. */
type JobColumns = typeof jobQueue.$inferSelect;

/** A job as the queue stores it (everything but the idempotency snapshot). */
export interface JobRecord {
  id: string;
  jobType: string;
  organizationId: string | null;
  payload: unknown;
  status: JobColumns["status"];
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

/** The columns of a raw `job_queue` row that a `JobRecord` is made of (`select *` rows have them all). */
export type JobRow = Pick<
  DbRow<typeof jobQueue>,
  | "id"
  | "job_type"
  | "organization_id"
  | "payload"
  | "status"
  | "priority"
  | "run_number"
  | "attempt"
  | "max_attempts"
  | "timeout_seconds"
  | "next_run_at"
  | "lease_expires_at"
  | "last_heartbeat_at"
  | "worker_id"
  | "started_at"
  | "finished_at"
  | "stage"
  | "progress_done"
  | "progress_total"
  | "progress_pct"
  | "checkpoint"
  | "idempotency_key"
  | "status_reason"
  | "last_error_code"
  | "last_error_message"
  | "workflow_step_id"
  | "schedule_id"
  | "scheduled_for"
  | "job_key"
  | "created_at"
  | "updated_at"
>;

/**
 * The one mapper of a `JobRecord`, from a raw `job_queue` row (snake_case, driver types: int8 and
 * numeric may arrive as text, timestamps as text or `Date`).
 */
export function jobFromRow(row: JobRow): JobRecord {
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
