import {
  compileCron,
  DEFAULT_TIME_ZONE,
  newId,
  type OrganizationScope,
  RunledgerError,
  type ScheduleOverlapPolicy,
  scheduleFireTime,
  upcomingScheduleSlots,
  validateCatchupWindowSeconds,
  validateCronExpression,
  validateJitterSeconds,
  validateOverlapPolicy,
  validateScheduleName,
  validateTimeZone,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { microsecondTimestamp, type Page, toDate } from "../rows.ts";
import {
  databaseNow,
  type ScheduleRow,
  scheduleGet,
  scheduleList,
  scheduleSetActive,
  scheduleSetNextFireAt,
  scheduleUpsert,
  visibleSchedules,
} from "../sql/schedules.ts";
import {
  checkIdentifierLength,
  checkLimit,
  checkPage,
  DEFINITION_HINT,
  fail,
  isBlank,
  isStorableText,
  isUuid,
  isValidDate,
  jsonText,
} from "../validate.ts";
import { type JobScheduleRecord, scheduleFromRow } from "./record.ts";

/** Create or refresh a schedule, keyed by its unique `name`. */
export interface JobScheduleUpsert {
  name: string;
  jobType: string;
  organizationId?: string | null;
  /** The payload of every job it fires, as given (nothing is added to it). */
  payloadTemplate?: unknown;
  /** Six fields, seconds first: `0 0 * * * *` is the top of every hour. */
  cronExpr: string;
  /** IANA time zone the expression is evaluated in (`Europe/Berlin`). Default `UTC`. */
  timezone?: string;
  /** What a slot does while the previous fire's job is still live. Default `ALLOW`. */
  overlapPolicy?: ScheduleOverlapPolicy;
  /** How far back slots missed during a downtime or pause still fire. Default 0: only the latest. */
  catchupWindowSeconds?: number;
  isActive?: boolean;
  /**
   * The first slot. Default: the first slot after now. Kept on later upserts unless the cron
   * expression or the time zone changes.
   */
  nextFireAt?: Date;
  /** Deterministic per-fire delay, 0..86400 seconds. Default 0. */
  maxJitterSeconds?: number;
  /** The clock for the default first slot; the database's when omitted. */
  now?: Date;
}

/**
 * Insert a schedule, or refresh an existing one of the same name: job type, payload template,
 * cron, time zone, policies and jitter are overwritten, while `is_active` (an operator's pause),
 * the organization and the counters are preserved, and the cursor moves only when the cron
 * expression or the time zone changed. Invalid input is refused before anything is written. An
 * upsert refreshes only a schedule of its own organization (none: a schedule without one), never
 * another organization's: `job_schedule.name_taken`.
 */
export async function upsertJobSchedule(executor: Executor, input: JobScheduleUpsert): Promise<JobScheduleRecord> {
  validateScheduleName(input.name);
  validateCronExpression(input.cronExpr);
  const timezone = input.timezone ?? DEFAULT_TIME_ZONE;
  validateTimeZone(timezone);
  const overlapPolicy = input.overlapPolicy ?? "ALLOW";
  validateOverlapPolicy(overlapPolicy);
  const catchupWindowSeconds = input.catchupWindowSeconds ?? 0;
  validateCatchupWindowSeconds(catchupWindowSeconds);
  validateJitterSeconds(input.maxJitterSeconds ?? 0);
  if (isBlank(input.jobType)) fail("identifier.job_type_blank");
  if (!isStorableText(input.jobType)) fail("job_schedule.invalid_job_type");
  checkIdentifierLength(input.jobType, "jobType");
  if (input.organizationId != null && !isUuid(input.organizationId))
    fail("job_schedule.invalid_name", { field: "organizationId" });
  if (input.nextFireAt !== undefined && !isValidDate(input.nextFireAt))
    fail("job_schedule.invalid_cron", { field: "nextFireAt" });
  if (input.now !== undefined && !isValidDate(input.now)) fail("job_schedule.invalid_cron", { field: "now" });
  const template = jsonText(input.payloadTemplate ?? {}, "job.invalid_payload", "payloadTemplate");
  return translating(async () => {
    const id = newId();
    // An explicit first fire is its own slot; a computed one is the next slot plus its jitter.
    let slot = input.nextFireAt ?? null;
    let fireAt = slot;
    if (slot === null) {
      slot = compileCron(input.cronExpr, timezone).next(await scheduleClock(executor, input.now));
      if (slot === null) throw new RunledgerError("job_schedule.invalid_cron", { internal: "no future slot" });
      fireAt = scheduleFireTime(id, slot, input.maxJitterSeconds ?? 0);
    }
    const [row] = await scheduleUpsert.run(executor, {
      id,
      name: input.name,
      jobType: input.jobType,
      organizationId: input.organizationId ?? null,
      payloadTemplate: template,
      cronExpr: input.cronExpr,
      timezone,
      overlapPolicy,
      catchupWindowSeconds,
      isActive: input.isActive ?? true,
      nextSlotAt: microsecondTimestamp(slot),
      nextFireAt: microsecondTimestamp(fireAt ?? slot),
      maxJitterSeconds: input.maxJitterSeconds ?? 0,
    });
    if (row?.definition_usable !== true) {
      throw new RunledgerError("job_schedule.definition_not_found_or_disabled", {
        details: { jobType: input.jobType, hint: DEFINITION_HINT },
      });
    }
    // No row: the name belongs to another organization's schedule (or, for an upsert without an
    // organization, to any organization's), which this upsert must not overwrite.
    if (row.id === null) throw new RunledgerError("job_schedule.name_taken");
    return scheduleFromRow(row as ScheduleRow);
  });
}

/** `now` when given (tests set time instead of waiting for it), else the database's clock. */
async function scheduleClock(executor: Executor, now: Date | undefined): Promise<Date> {
  if (now !== undefined) return now;
  const [row] = await databaseNow.run(executor, {});
  return toDate(row!.now);
}

/**
 * Pause or resume a schedule; false when no schedule in `scope` has that name.
 * Resuming a schedule whose job type has no enabled definition is
 * `job_schedule.definition_not_found_or_disabled` (active schedules need enabled definitions).
 * A paused schedule fires nothing and its cursor stays where it was; on resume, the slots that
 * passed meanwhile are treated as after a downtime: the latest fires at once, earlier ones within
 * the catch-up window fire too, older ones are counted as missed.
 */
export async function setJobScheduleActive(
  executor: Executor,
  name: string,
  isActive: boolean,
  scope: OrganizationScope,
): Promise<boolean> {
  const visible = visibleSchedules(scope);
  validateScheduleName(name);
  return translating(async () => {
    const [row] = await queryRows<{ found: boolean; updated: boolean; job_type: string | null }>(
      executor,
      scheduleSetActive(name, isActive, visible),
    );
    if (row?.updated === true || row?.found !== true) return row?.updated === true;
    throw new RunledgerError("job_schedule.definition_not_found_or_disabled", {
      details: { jobType: row.job_type, hint: DEFINITION_HINT },
    });
  });
}

/**
 * Move a schedule's cursor to `nextFireAt` (which becomes the next slot, without jitter); false
 * when no schedule in `scope` has that name.
 */
export async function setJobScheduleNextFireAt(
  executor: Executor,
  name: string,
  nextFireAt: Date,
  scope: OrganizationScope,
): Promise<boolean> {
  const visible = visibleSchedules(scope);
  validateScheduleName(name);
  if (!isValidDate(nextFireAt)) fail("job_schedule.invalid_cron", { field: "nextFireAt" });
  const at = microsecondTimestamp(nextFireAt);
  return translating(async () => {
    const rows = await queryRows(executor, scheduleSetNextFireAt(name, at, visible));
    return rows.length > 0;
  });
}

/** A schedule as listed: the record plus its next slots, when asked for. */
export interface JobScheduleListItem extends JobScheduleRecord {
  /** The next `upcoming` slots from the cursor on, each with the time it is due (jitter included). */
  upcoming: { scheduledFor: Date; fireAt: Date }[];
}

/** Most upcoming slots a list or get computes per schedule. */
export const MAX_UPCOMING_SLOTS = 100;

function checkUpcoming(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_UPCOMING_SLOTS) {
    fail("job.invalid_pagination", { field: "upcoming", max: MAX_UPCOMING_SLOTS });
  }
}

function withUpcoming(schedule: JobScheduleRecord, count: number): JobScheduleListItem {
  let upcoming: JobScheduleListItem["upcoming"] = [];
  try {
    upcoming = upcomingScheduleSlots(schedule, count);
  } catch {
    // A row the scheduler cannot evaluate (it reports that itself) still lists.
  }
  return { ...schedule, upcoming };
}

/**
 * One schedule by name, with its next `upcoming` slots; null when `scope` has none of that name.
 * `scope` is one organization or `ALL_ORGANIZATIONS` (`scope.required` otherwise).
 */
export async function getJobSchedule(
  executor: Executor,
  name: string,
  scope: OrganizationScope,
  options: { upcoming?: number } = {},
): Promise<JobScheduleListItem | null> {
  const visible = visibleSchedules(scope);
  validateScheduleName(name);
  checkUpcoming(options.upcoming ?? 0);
  return translating(async () => {
    const [row] = await queryRows<ScheduleRow>(executor, scheduleGet(name, visible));
    return row === undefined ? null : withUpcoming(scheduleFromRow(row), options.upcoming ?? 0);
  });
}

/**
 * Schedules by name, of one organization or all (`scope`), optionally only active ones, each with
 * its next `upcoming` slots; a page at a time (`after`: the last name seen).
 */
export async function listJobSchedules(
  executor: Executor,
  filter: { scope: OrganizationScope; activeOnly?: boolean; limit: number; after?: string; upcoming?: number },
): Promise<Page<JobScheduleListItem, string>> {
  const visible = visibleSchedules(filter?.scope);
  checkLimit(filter.limit);
  checkPage({ text: { after: filter.after } });
  checkUpcoming(filter.upcoming ?? 0);
  return translating(async () => {
    const rows = await queryRows<ScheduleRow>(
      executor,
      scheduleList({ visible, activeOnly: filter.activeOnly, after: filter.after, limit: filter.limit }),
    );
    const items = rows.slice(0, filter.limit).map((row) => withUpcoming(scheduleFromRow(row), filter.upcoming ?? 0));
    return { items, next: rows.length > filter.limit ? items.at(-1)!.name : null };
  });
}
