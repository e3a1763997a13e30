import {
  type OrganizationScope,
  RunledgerError,
  scheduleSlotsBetween,
  validateScheduleName,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { insertScheduledJobs } from "../jobs/enqueue.ts";
import { queryRows } from "../query.ts";
import { toDate } from "../rows.ts";
import { type ScheduleRow, scheduleWithClock, visibleSchedules } from "../sql/schedules.ts";
import { fail, isValidDate } from "../validate.ts";
import { scheduleFromRow } from "./record.ts";

export interface JobScheduleBackfill {
  /** The schedule's name. */
  name: string;
  /** First instant of the interval; a slot exactly here fires. */
  from: Date;
  /** End of the interval, exclusive; no later than now. */
  to: Date;
  /** The clock `to` is checked against and the jobs' run-at; the database's when omitted. */
  now?: Date;
}

export interface JobScheduleBackfillResult {
  /** Slots in the interval. */
  slots: number;
  /** Jobs this call created: one per slot that had none. */
  created: { jobId: string; scheduledFor: Date }[];
  /** Slots that already had a job (fired before, or by an earlier backfill), left alone. */
  existing: number;
}

/**
 * Fire every slot of the schedule `input.name` in `[from, to)` that `scope` (one organization, or
 * `ALL_ORGANIZATIONS`) can see, each as one job with its own `scheduledFor`,
 * idempotently: a slot that already has a job (from the scheduler or an earlier backfill) is not
 * fired again, so running the same backfill twice creates one set of jobs. Works on paused
 * schedules; ignores the overlap policy, jitter and the catch-up window, and leaves the cursor
 * alone. Refuses an interval that ends after now (`job_schedule.invalid_backfill_range`), one of
 * more than `MAX_BACKFILL_SLOTS` slots (`job_schedule.backfill_too_large`) and an unknown name
 * (`job_schedule.not_found`); writes nothing then.
 */
export async function backfillJobSchedule(
  executor: Executor,
  input: JobScheduleBackfill,
  scope: OrganizationScope,
): Promise<JobScheduleBackfillResult> {
  const visible = visibleSchedules(scope);
  validateScheduleName(input.name);
  if (!isValidDate(input.from) || !isValidDate(input.to) || input.from > input.to) {
    fail("job_schedule.invalid_backfill_range");
  }
  if (input.now !== undefined && !isValidDate(input.now)) fail("job_schedule.invalid_backfill_range", { field: "now" });
  return translating(async () => {
    const [row] = await queryRows<ScheduleRow & { clock: string | Date }>(
      executor,
      scheduleWithClock(input.name, visible, input.now),
    );
    if (row === undefined) throw notFound(input.name);
    if (input.to > toDate(row.clock)) fail("job_schedule.invalid_backfill_range", { field: "to" });
    const schedule = scheduleFromRow(row);
    const slots = scheduleSlotsBetween(schedule.cronExpr, schedule.timezone, input.from, input.to);
    const payload = JSON.stringify(schedule.payloadTemplate ?? {});
    const { ids, missingJobTypes } = await insertScheduledJobs(
      executor,
      slots.map((slot) => ({
        jobType: schedule.jobType,
        organizationId: schedule.organizationId,
        payload,
        scheduleId: schedule.id,
        scheduledFor: slot,
        nextRunAt: input.now ?? null,
      })),
    );
    if (missingJobTypes.size > 0) {
      throw new RunledgerError("job.definition_not_found_or_disabled", { details: { jobType: schedule.jobType } });
    }
    const created = slots.flatMap((slot, i) => (ids[i] == null ? [] : [{ jobId: ids[i]!, scheduledFor: slot }]));
    return { slots: slots.length, created, existing: slots.length - created.length };
  });
}

function notFound(name: string): RunledgerError {
  return new RunledgerError("job_schedule.not_found", { internal: `schedule ${JSON.stringify(name)}` });
}
