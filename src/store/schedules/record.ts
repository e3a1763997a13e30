import type { ScheduleOverlapPolicy } from "../../core/index.ts";
import { toDate, toDateOrNull } from "../rows.ts";
import type { ScheduleRow } from "../sql/schedules.ts";

/** A cron schedule that materializes jobs, evaluated in its IANA time zone. */
export interface JobScheduleRecord {
  id: string;
  name: string;
  jobType: string;
  organizationId: string | null;
  payloadTemplate: unknown;
  cronExpr: string;
  /** IANA time zone the cron expression is evaluated in; `UTC` unless set. */
  timezone: string;
  overlapPolicy: ScheduleOverlapPolicy;
  /** How far back missed slots still fire after a downtime or pause; 0 fires only the latest. */
  catchupWindowSeconds: number;
  isActive: boolean;
  maxJitterSeconds: number;
  /** The slot the schedule fires next (its cron time, before jitter). */
  nextSlotAt: Date;
  /** When that slot is due: the slot plus the schedule's jitter. */
  nextFireAt: Date;
  /** A slot `BUFFER_ONE` holds until the previous fire's job has finished. */
  bufferedSlotAt: Date | null;
  /** The job of the latest fire. */
  lastJobId: string | null;
  lastFiredAt: Date | null;
  /** Slots skipped for being older than the catch-up window, since the schedule was created. */
  missedSlotCount: number;
  /** Slots skipped by the overlap policy, since the schedule was created. */
  overlapSkipCount: number;
  createdAt: Date;
  updatedAt: Date;
}

/** Map a raw `job_schedules` row. */
export function scheduleFromRow(row: ScheduleRow): JobScheduleRecord {
  const nextFireAt = toDate(row.next_fire_at);
  return {
    id: row.id,
    name: row.name,
    jobType: row.job_type,
    organizationId: row.organization_id ?? null,
    payloadTemplate: row.payload_template,
    cronExpr: row.cron_expr,
    timezone: row.timezone,
    overlapPolicy: row.overlap_policy,
    catchupWindowSeconds: Number(row.catchup_window_seconds),
    isActive: row.is_active,
    maxJitterSeconds: Number(row.max_jitter_seconds),
    // Rows written before slots were stored apart have the slot in next_fire_at.
    nextSlotAt: row.next_slot_at == null ? nextFireAt : toDate(row.next_slot_at),
    nextFireAt,
    bufferedSlotAt: toDateOrNull(row.buffered_slot_at),
    lastJobId: row.last_job_id ?? null,
    lastFiredAt: toDateOrNull(row.last_fired_at),
    missedSlotCount: Number(row.missed_slot_count),
    overlapSkipCount: Number(row.overlap_skip_count),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
