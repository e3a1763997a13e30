import { type SQL, sql } from "drizzle-orm";
import { clockAt, clockNow, statement } from "../query.ts";
import type { DbRow } from "../rows.ts";
import { jobDefinitions, jobQueue, jobSchedules } from "../schema/index.ts";
import { scopeCondition } from "./scope.ts";

/*
 * Schedules' statements (src/store/schedules/): the operators' writes and reads, and the
 * scheduler's pass. The scoped ones are built per call around a `visibleSchedules` condition.
 */

export type ScheduleRow = DbRow<typeof jobSchedules>;

/** The schedules `scope` sees; `scope.required` (before any statement runs) when it is no scope. */
export function visibleSchedules(scope: unknown): SQL {
  return scopeCondition(sql`organization_id`, scope);
}

/** A row of an outer join: every column may be null (no match). */
type Unmatched<Row> = { [K in keyof Row]: Row[K] | null };

/** The database's clock, for a computation in TypeScript (a schedule's first slot). */
export const databaseNow = statement<{ now: string | Date }>("runledger_database_now", sql`select now() as now`);

/*
 * Insert a schedule, or refresh the one of the same name if it belongs to the same organization
 * (none: one without). The cursor moves only when the cron expression or the time zone changed.
 * The definition is share-locked, so it cannot be disabled under a schedule being made active
 * (disabling takes the schedules' table lock first, as this insert does: no deadlock). One row
 * always: `definition_usable` (null: no definition), and the schedule's columns, null when the
 * name belongs to another organization's schedule or the definition refused.
 */
export const scheduleUpsert = statement<{ definition_usable: boolean | null } & Unmatched<ScheduleRow>>(
  "runledger_schedule_upsert",
  sql`with definition as (
      select is_enabled from ${jobDefinitions} where job_type = ${sql.placeholder("jobType")} for share
    ),
    upserted as (
    insert into ${jobSchedules} as s (id, name, job_type, organization_id, payload_template, cron_expr, timezone,
      overlap_policy, catchup_window_seconds, is_active, next_slot_at, next_fire_at, max_jitter_seconds)
    select ${sql.placeholder("id")}, ${sql.placeholder("name")}, ${sql.placeholder("jobType")},
      ${sql.placeholder("organizationId")}::uuid, ${sql.placeholder("payloadTemplate")}::jsonb,
      ${sql.placeholder("cronExpr")}, ${sql.placeholder("timezone")}, ${sql.placeholder("overlapPolicy")},
      ${sql.placeholder("catchupWindowSeconds")}::int, ${sql.placeholder("isActive")}::boolean,
      ${sql.placeholder("nextSlotAt")}::timestamptz, ${sql.placeholder("nextFireAt")}::timestamptz,
      ${sql.placeholder("maxJitterSeconds")}::int
    where (select is_enabled or not ${sql.placeholder("isActive")}::boolean from definition)
    on conflict (name) do update set
      job_type = excluded.job_type,
      payload_template = excluded.payload_template,
      cron_expr = excluded.cron_expr,
      timezone = excluded.timezone,
      overlap_policy = excluded.overlap_policy,
      catchup_window_seconds = excluded.catchup_window_seconds,
      max_jitter_seconds = excluded.max_jitter_seconds,
      next_slot_at = case when (s.cron_expr, s.timezone) is distinct from (excluded.cron_expr, excluded.timezone)
        then excluded.next_slot_at else s.next_slot_at end,
      next_fire_at = case when (s.cron_expr, s.timezone) is distinct from (excluded.cron_expr, excluded.timezone)
        then excluded.next_fire_at else s.next_fire_at end
    where s.organization_id is not distinct from excluded.organization_id
    returning *
    )
  select (select is_enabled or not ${sql.placeholder("isActive")}::boolean from definition) as definition_usable, u.*
  from (select 1) one left join upserted u on true`,
);

/**
 * Pause or resume the schedule `name` that `visible` admits. Resuming needs an enabled definition,
 * share-locked as in the upsert (same lock order). Says whether the schedule was found, whether it
 * was updated, and its job type.
 */
export function scheduleSetActive(name: string, isActive: boolean, visible: SQL): SQL {
  return sql`with target as (select id, job_type from ${jobSchedules} where name = ${name} and ${visible}),
    definition as (
      select is_enabled from ${jobDefinitions} where job_type = (select job_type from target) for share
    ),
    updated as (
      update ${jobSchedules} s set is_active = ${isActive} from target t
      where s.id = t.id and (not ${isActive}::boolean or coalesce((select is_enabled from definition), false))
      returning s.id
    )
    select exists (select 1 from target) as found, exists (select 1 from updated) as updated,
      (select job_type from target) as job_type`;
}

/** Move the cursor of the schedule `name` that `visible` admits to `at` (a timestamptz text): slot and fire time. */
export function scheduleSetNextFireAt(name: string, at: string, visible: SQL): SQL {
  return sql`update ${jobSchedules} set next_slot_at = ${at}::timestamptz, next_fire_at = ${at}::timestamptz
    where name = ${name} and ${visible} returning id`;
}

/** The schedule `name` that `visible` admits. */
export function scheduleGet(name: string, visible: SQL): SQL {
  return sql`select * from ${jobSchedules} where name = ${name} and ${visible}`;
}

/**
 * The `visible` schedules (only active ones if asked) by name, after `after` (keyset on the unique
 * name); one row more than `limit` says there is a next page.
 */
export function scheduleList(filter: { visible: SQL; activeOnly?: boolean; after?: string; limit: number }): SQL {
  return sql`select * from ${jobSchedules} where ${filter.visible}
    ${filter.activeOnly ? sql`and is_active` : sql``}
    ${filter.after === undefined ? sql`` : sql`and name > ${filter.after}`}
    order by name limit ${filter.limit + 1}`;
}

/** The schedule `name` that `visible` admits, with the clock (`now`, else the database's) a backfill checks its interval against. */
export function scheduleWithClock(name: string, visible: SQL, now: Date | undefined): SQL {
  return sql`select s.*, ${clockAt(now)} as clock from ${jobSchedules} s where name = ${name} and ${visible}`;
}

const LAST_JOB_LIVE = sql`exists (select 1 from ${jobQueue} j where j.id = s.last_job_id and j.status in ('PENDING', 'LEASED'))`;

/*
 * Due: the cursor's slot is due, or a buffered slot can be released because the previous fire's
 * job is no longer live. The clock is the `now` parameter or the database's, and comes back on
 * every row (one row of nulls besides it when nothing is due).
 */
export const scheduleClaimDue = statement<
  { pass_now: string | Date } & Unmatched<ScheduleRow> & { last_job_live: boolean | null }
>(
  "runledger_claim_due_schedules",
  sql`
  with clock as (select ${clockNow} as now),
  due as (
    select s.*, ${LAST_JOB_LIVE} as last_job_live
    from ${jobSchedules} s
    where s.is_active
      and (s.next_fire_at <= (select now from clock) or (s.buffered_slot_at is not null and not ${LAST_JOB_LIVE}))
    order by s.next_fire_at, s.id
    limit ${sql.placeholder("limit")}
    for update of s skip locked
  )
  select clock.now as pass_now, due.* from clock left join due on true
`,
);

/** Where each schedule's cursor, buffer and counters stand after a pass; one statement for all. */
export const scheduleMarkPassed = statement(
  "runledger_mark_schedules_passed",
  sql`
  update ${jobSchedules} s set
    next_slot_at = u.next_slot_at,
    next_fire_at = u.next_fire_at,
    buffered_slot_at = u.buffered_slot_at,
    last_job_id = coalesce(u.last_job_id, s.last_job_id),
    last_fired_at = case when u.last_job_id is null then s.last_fired_at
      else ${clockNow} end,
    missed_slot_count = s.missed_slot_count + u.missed,
    overlap_skip_count = s.overlap_skip_count + u.overlap_skipped,
    is_active = s.is_active and not u.exhausted
  from unnest(${sql.placeholder("ids")}::uuid[], ${sql.placeholder("nextSlots")}::timestamptz[],
    ${sql.placeholder("nextFires")}::timestamptz[], ${sql.placeholder("buffered")}::timestamptz[],
    ${sql.placeholder("lastJobs")}::uuid[], ${sql.placeholder("missed")}::bigint[],
    ${sql.placeholder("overlapSkipped")}::bigint[], ${sql.placeholder("exhausted")}::boolean[])
    as u(id, next_slot_at, next_fire_at, buffered_slot_at, last_job_id, missed, overlap_skipped, exhausted)
  where s.id = u.id
`,
);
