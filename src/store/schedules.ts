import { sql } from "drizzle-orm";
import { uuidv7 } from "uuidv7";
import {
  nextCronFire,
  RunledgerError,
  scheduleJitterSeconds,
  validateCronExpression,
  validateJitterSeconds,
  validateScheduleName,
} from "../core/index.ts";
import type { Executor } from "./db.ts";
import { toQueryError, translating } from "./errors.ts";
import { enqueueJob } from "./jobs/enqueue.ts";
import type { RawRow } from "./jobs/record.ts";
import { queryRows } from "./query.ts";
import { microsecondTimestamp, toDate, toDateOrNull } from "./rows.ts";
import { jobSchedules } from "./schema/index.ts";
import {
  checkIdentifierLength,
  checkLimit,
  checkPage,
  fail,
  isBlank,
  isStorableText,
  isUuid,
  isValidDate,
  jsonText,
} from "./validate.ts";

/** A cron schedule that materializes jobs. Always UTC. */
export interface JobScheduleRecord {
  id: string;
  name: string;
  jobType: string;
  organizationId: string | null;
  payloadTemplate: unknown;
  cronExpr: string;
  timezone: "UTC";
  isActive: boolean;
  maxJitterSeconds: number;
  nextFireAt: Date;
  lastFiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Create or refresh a schedule, keyed by its unique `name`. */
export interface JobScheduleUpsert {
  name: string;
  jobType: string;
  organizationId?: string | null;
  payloadTemplate?: unknown;
  /** Six fields, seconds first, UTC: `0 0 * * * *` is the top of every hour. */
  cronExpr: string;
  isActive?: boolean;
  /** When it fires first. Kept on later upserts unless the cron expression changes. */
  nextFireAt: Date;
  /** Deterministic per-fire delay, 0..86400 seconds. Default 0. */
  maxJitterSeconds?: number;
}

function scheduleFromRow(row: RawRow): JobScheduleRecord {
  return {
    id: row.id,
    name: row.name,
    jobType: row.job_type,
    organizationId: row.organization_id ?? null,
    payloadTemplate: row.payload_template,
    cronExpr: row.cron_expr,
    timezone: "UTC",
    isActive: row.is_active,
    maxJitterSeconds: Number(row.max_jitter_seconds),
    nextFireAt: toDate(row.next_fire_at),
    lastFiredAt: toDateOrNull(row.last_fired_at),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

/**
 * Insert a schedule, or refresh an existing one of the same name: job type, payload template,
 * cron and jitter are overwritten, while `is_active` (an operator's pause) and the organization
 * are preserved, and `next_fire_at` moves only when the cron expression changed. Invalid names,
 * cron expressions and jitter are refused before anything is written. An upsert naming an
 * organization never touches another organization's schedule: `job_schedule.name_taken`.
 */
export async function upsertJobSchedule(executor: Executor, input: JobScheduleUpsert): Promise<JobScheduleRecord> {
  validateScheduleName(input.name);
  validateCronExpression(input.cronExpr);
  validateJitterSeconds(input.maxJitterSeconds ?? 0);
  if (isBlank(input.jobType)) fail("identifier.job_type_blank");
  if (!isStorableText(input.jobType)) fail("job_schedule.invalid_job_type");
  checkIdentifierLength(input.jobType, "jobType");
  if (input.organizationId != null && !isUuid(input.organizationId))
    fail("job_schedule.invalid_name", { field: "organizationId" });
  if (!isValidDate(input.nextFireAt)) fail("job_schedule.invalid_cron", { field: "nextFireAt" });
  const template = jsonText(input.payloadTemplate ?? {}, "job.invalid_payload", "payloadTemplate");
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`insert into ${jobSchedules} as s (id, name, job_type, organization_id, payload_template, cron_expr, timezone,
          is_active, next_fire_at, max_jitter_seconds)
        values (${uuidv7()}, ${input.name}, ${input.jobType}, ${input.organizationId ?? null}, ${template}::jsonb,
          ${input.cronExpr}, 'UTC', ${input.isActive ?? true}, ${microsecondTimestamp(input.nextFireAt)}::timestamptz,
          ${input.maxJitterSeconds ?? 0})
        on conflict (name) do update set
          job_type = excluded.job_type,
          payload_template = excluded.payload_template,
          cron_expr = excluded.cron_expr,
          timezone = excluded.timezone,
          max_jitter_seconds = excluded.max_jitter_seconds,
          next_fire_at = case when s.cron_expr is distinct from excluded.cron_expr
            then excluded.next_fire_at else s.next_fire_at end
        where excluded.organization_id is null or s.organization_id is not distinct from excluded.organization_id
        returning *`,
    );
    // No row: the name belongs to another organization's schedule, which an upsert scoped to
    // this organization must not overwrite.
    if (row === undefined) throw new RunledgerError("job_schedule.name_taken");
    return scheduleFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Only a schedule of this organization; omitted means any organization (admin). */
export interface ScheduleScope {
  organizationId?: string;
}

const scheduleScope = (scope: ScheduleScope) =>
  scope.organizationId === undefined ? sql`` : sql`and organization_id = ${scope.organizationId}`;

/** Pause or resume a schedule; false when no schedule (of `scope`'s organization) has that name. */
export async function setJobScheduleActive(
  executor: Executor,
  name: string,
  isActive: boolean,
  scope: ScheduleScope = {},
): Promise<boolean> {
  validateScheduleName(name);
  if (scope.organizationId !== undefined && !isUuid(scope.organizationId)) return false;
  try {
    const rows = await queryRows(
      executor,
      sql`update ${jobSchedules} set is_active = ${isActive} where name = ${name} ${scheduleScope(scope)} returning id`,
    );
    return rows.length > 0;
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Move a schedule's next fire; false when no schedule (of `scope`'s organization) has that name. */
export async function setJobScheduleNextFireAt(
  executor: Executor,
  name: string,
  nextFireAt: Date,
  scope: ScheduleScope = {},
): Promise<boolean> {
  validateScheduleName(name);
  if (!isValidDate(nextFireAt)) fail("job_schedule.invalid_cron", { field: "nextFireAt" });
  if (scope.organizationId !== undefined && !isUuid(scope.organizationId)) return false;
  try {
    const rows = await queryRows(
      executor,
      sql`update ${jobSchedules} set next_fire_at = ${microsecondTimestamp(nextFireAt)}::timestamptz
        where name = ${name} ${scheduleScope(scope)} returning id`,
    );
    return rows.length > 0;
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Schedules by name, optionally one organization's or only active ones. */
export async function listJobSchedules(
  executor: Executor,
  filter: { organizationId?: string; activeOnly?: boolean; limit: number; afterName?: string },
): Promise<JobScheduleRecord[]> {
  checkLimit(filter.limit);
  checkPage({ text: { afterName: filter.afterName } });
  if (filter.organizationId !== undefined && !isUuid(filter.organizationId)) return [];
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select * from ${jobSchedules} where true
        ${filter.organizationId === undefined ? sql`` : sql`and organization_id = ${filter.organizationId}`}
        ${filter.activeOnly ? sql`and is_active` : sql``}
        ${filter.afterName === undefined ? sql`` : sql`and name > ${filter.afterName}`}
        order by name limit ${filter.limit}`,
    );
    return rows.map(scheduleFromRow);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Lock up to `limit` active schedules due at `now`, oldest first, skipping ones another scheduler holds. */
export async function claimDueSchedules(tx: Executor, now: Date, limit: number): Promise<JobScheduleRecord[]> {
  const rows = await translating(() =>
    queryRows<RawRow>(
      tx,
      sql`select * from ${jobSchedules}
        where is_active and next_fire_at <= ${microsecondTimestamp(now)}::timestamptz
        order by next_fire_at, id limit ${limit}
        for update skip locked`,
    ),
  );
  return rows.map(scheduleFromRow);
}

/** Record a fire and advance the cursor; false when the schedule no longer exists. */
export async function markScheduleFired(
  tx: Executor,
  scheduleId: string,
  firedAt: Date,
  nextFireAt: Date,
): Promise<boolean> {
  const rows = await translating(() =>
    queryRows(
      tx,
      sql`update ${jobSchedules} set last_fired_at = ${microsecondTimestamp(firedAt)}::timestamptz,
          next_fire_at = ${microsecondTimestamp(nextFireAt)}::timestamptz
        where id = ${scheduleId} returning id`,
    ),
  );
  return rows.length > 0;
}

/** Delay before a schedule whose materialization failed is tried again. */
export const SCHEDULE_RETRY_DELAY_MS = 30_000;

export interface MaterializeResult {
  fired: { scheduleId: string; scheduleName: string; jobId: string; scheduledFor: Date }[];
  failed: { scheduleId: string; scheduleName: string; error: RunledgerError }[];
}

/** The job payload for one fire: the template plus `_schedule` metadata (spec §7.3). */
export function schedulePayload(schedule: JobScheduleRecord): Record<string, unknown> {
  const meta = {
    schedule_id: schedule.id,
    schedule_name: schedule.name,
    scheduled_for: schedule.nextFireAt.toISOString(),
  };
  const template = schedule.payloadTemplate;
  return template !== null && typeof template === "object" && !Array.isArray(template)
    ? { ...(template as Record<string, unknown>), _schedule: meta }
    : { payload: template, _schedule: meta };
}

/**
 * One scheduler pass in one transaction: each due schedule (locked, so concurrent schedulers
 * never fire the same slot) becomes one job with stage `scheduled`, and its cursor moves to the
 * first occurrence strictly after `now` plus its jitter. A schedule that fails — invalid cron,
 * disabled or missing job type — is rolled back to its savepoint and retried 30 s later, without
 * holding up the others. Missed fires during downtime are not replayed one by one.
 */
export async function materializeDueSchedules(
  executor: Executor,
  options: { now: Date; limit: number },
): Promise<MaterializeResult> {
  const result: MaterializeResult = { fired: [], failed: [] };
  try {
    await executor.transaction(async (tx) => {
      for (const schedule of await claimDueSchedules(tx, options.now, options.limit)) {
        try {
          await tx.transaction(async (savepoint) => {
            const occurrence = nextCronFire(schedule.cronExpr, options.now);
            const jitter = scheduleJitterSeconds(schedule.id, occurrence, schedule.maxJitterSeconds);
            const { id } = await enqueueJob(savepoint, {
              jobType: schedule.jobType,
              organizationId: schedule.organizationId,
              payload: schedulePayload(schedule),
              stage: "scheduled",
              nextRunAt: options.now,
            });
            await markScheduleFired(
              savepoint,
              schedule.id,
              options.now,
              new Date(occurrence.getTime() + jitter * 1000),
            );
            result.fired.push({
              scheduleId: schedule.id,
              scheduleName: schedule.name,
              jobId: id,
              scheduledFor: schedule.nextFireAt,
            });
          });
        } catch (error) {
          result.failed.push({ scheduleId: schedule.id, scheduleName: schedule.name, error: toQueryError(error) });
          await tx.execute(
            sql`update ${jobSchedules} set next_fire_at = ${microsecondTimestamp(new Date(options.now.getTime() + SCHEDULE_RETRY_DELAY_MS))}::timestamptz where id = ${schedule.id}`,
          );
        }
      }
    });
    return result;
  } catch (error) {
    throw toQueryError(error);
  }
}
