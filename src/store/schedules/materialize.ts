import { planScheduleFires, RunledgerError, type SchedulePlan } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError, translating } from "../errors.ts";
import { insertScheduledJobs, type ScheduledJobInsert } from "../jobs/enqueue.ts";
import { columnParams } from "../query.ts";
import { microsecondTimestamp, toDate } from "../rows.ts";
import { type ScheduleRow, scheduleClaimDue, scheduleMarkPassed } from "../sql/schedules.ts";
import { fail, isInt32, isValidDate } from "../validate.ts";
import { type JobScheduleRecord, scheduleFromRow } from "./record.ts";

/** Delay before a schedule whose materialization failed is tried again. */
export const SCHEDULE_RETRY_DELAY_MS = 30_000;

/** A schedule a scheduler pass holds, with what its overlap policy needs. */
export interface DueSchedule extends JobScheduleRecord {
  /** Whether the job of its previous fire is still pending or running. */
  lastJobLive: boolean;
}

/**
 * Lock up to `limit` active schedules that are due at `now` (the database's clock when omitted)
 * or hold a buffered slot that can now fire, oldest cursor first, skipping ones another
 * scheduler holds. Returns the pass's clock with them.
 */
export async function claimDueSchedules(
  tx: Executor,
  options: { now?: Date; limit: number },
): Promise<{ now: Date; schedules: DueSchedule[] }> {
  const rows = await translating(() => scheduleClaimDue.run(tx, { now: options.now, limit: options.limit }));
  const now = toDate(rows[0]!.pass_now);
  const schedules = rows
    .filter((row) => row.id !== null)
    .map((row) => ({ ...scheduleFromRow(row as ScheduleRow), lastJobLive: row.last_job_live === true }));
  return { now, schedules };
}

interface Passed {
  id: string;
  next_slot: string;
  next_fire: string;
  buffered: string | null;
  last_job: string | null;
  missed: number;
  overlap_skipped: number;
  exhausted: boolean;
}

export interface MaterializeResult {
  /** Jobs enqueued, one per slot, with the slot each fired for. */
  fired: { scheduleId: string; scheduleName: string; jobId: string; scheduledFor: Date }[];
  /** Schedules that skipped slots in this pass: older than the catch-up window, or by overlap policy. */
  skipped: { scheduleId: string; scheduleName: string; missed: number; overlapSkipped: number }[];
  /** Schedules that could not fire (disabled or missing job type, unusable cron or zone); retried 30 s later. */
  failed: { scheduleId: string; scheduleName: string; error: RunledgerError }[];
  /** Slots were still due when the pass stopped at its limits: run another pass now. */
  more: boolean;
}

/**
 * One scheduler pass in one transaction, at `now` (the database's clock when omitted). Each
 * due schedule is locked (so concurrent schedulers never fire the same slot, and the unique slot
 * index backs that up) and planned by `planScheduleFires`: the latest due slot fires, earlier
 * ones within the catch-up window fire too and older ones are counted as missed, and the overlap
 * policy may skip or buffer them. Every slot becomes one job (stage `scheduled`, its payload the
 * template as it is, `scheduleId` and `scheduledFor` on the job) in one insert for the whole
 * pass, and the cursors move in one update. A schedule that cannot fire (disabled or missing
 * job type, an unusable cron or zone) is left as it was and retried 30 s later, without holding
 * up the others. A schedule whose expression has no later slot is deactivated.
 */
export async function materializeDueSchedules(
  executor: Executor,
  options: { now?: Date; limit: number },
): Promise<MaterializeResult> {
  if (!isInt32(options.limit) || options.limit <= 0) fail("job.invalid_pagination", { field: "limit" });
  if (options.now !== undefined && !isValidDate(options.now)) fail("job.invalid_pagination", { field: "now" });
  const result: MaterializeResult = { fired: [], skipped: [], failed: [], more: false };
  await translating(() =>
    executor.transaction(async (tx) => {
      const { now, schedules } = await claimDueSchedules(tx, options);
      if (schedules.length === 0) return;
      // A full batch means more may be due; failing schedules would only come back at once.
      const full = schedules.length === options.limit;
      const plans = new Map<DueSchedule, SchedulePlan>();
      const retries: DueSchedule[] = [];
      for (const schedule of schedules) {
        try {
          plans.set(schedule, planScheduleFires(schedule, now));
        } catch (error) {
          result.failed.push({ scheduleId: schedule.id, scheduleName: schedule.name, error: toQueryError(error) });
          retries.push(schedule);
        }
      }
      const inserts: ScheduledJobInsert[] = [];
      for (const [schedule, plan] of plans) {
        const payload = JSON.stringify(schedule.payloadTemplate ?? {});
        for (const slot of plan.fire) {
          inserts.push({
            jobType: schedule.jobType,
            organizationId: schedule.organizationId,
            payload,
            scheduleId: schedule.id,
            scheduledFor: slot,
            nextRunAt: options.now ?? null,
          });
        }
      }
      const { ids, missingJobTypes } = await insertScheduledJobs(tx, inserts);
      const passed: Passed[] = [];
      let at = 0;
      for (const [schedule, plan] of plans) {
        const jobIds = ids.slice(at, at + plan.fire.length);
        at += plan.fire.length;
        if (plan.fire.length > 0 && missingJobTypes.has(schedule.jobType)) {
          const error = new RunledgerError("job.definition_not_found_or_disabled", {
            details: { jobType: schedule.jobType },
          });
          result.failed.push({ scheduleId: schedule.id, scheduleName: schedule.name, error });
          retries.push(schedule);
          continue;
        }
        plan.fire.forEach((slot, i) => {
          const jobId = jobIds[i];
          // Null: the slot already had a job (a backfill, or a fire another pass made).
          if (jobId != null)
            result.fired.push({ scheduleId: schedule.id, scheduleName: schedule.name, jobId, scheduledFor: slot });
        });
        if (plan.missed > 0 || plan.overlapSkipped > 0) {
          result.skipped.push({
            scheduleId: schedule.id,
            scheduleName: schedule.name,
            missed: plan.missed,
            overlapSkipped: plan.overlapSkipped,
          });
        }
        result.more ||= plan.more;
        const last = plan.next ?? { slotAt: plan.fire.at(-1) ?? schedule.nextSlotAt, fireAt: schedule.nextFireAt };
        passed.push({
          id: schedule.id,
          next_slot: microsecondTimestamp(last.slotAt),
          next_fire: microsecondTimestamp(last.fireAt),
          buffered: plan.bufferedSlotAt === null ? null : microsecondTimestamp(plan.bufferedSlotAt),
          last_job: jobIds.findLast((id) => id != null) ?? null,
          missed: plan.missed,
          overlap_skipped: plan.overlapSkipped,
          exhausted: plan.next === null,
        });
      }
      result.more ||= full && result.failed.length === 0;
      const retryAt = microsecondTimestamp(new Date(now.getTime() + SCHEDULE_RETRY_DELAY_MS));
      for (const schedule of retries) {
        passed.push({
          id: schedule.id,
          next_slot: microsecondTimestamp(schedule.nextSlotAt),
          next_fire: retryAt,
          buffered: schedule.bufferedSlotAt === null ? null : microsecondTimestamp(schedule.bufferedSlotAt),
          last_job: null,
          missed: 0,
          overlap_skipped: 0,
          exhausted: false,
        });
      }
      await scheduleMarkPassed.run(tx, {
        now: options.now,
        ...columnParams(passed, {
          ids: "id",
          nextSlots: "next_slot",
          nextFires: "next_fire",
          buffered: "buffered",
          lastJobs: "last_job",
          missed: "missed",
          overlapSkipped: "overlap_skipped",
          exhausted: "exhausted",
        }),
      });
    }),
  );
  return result;
}
