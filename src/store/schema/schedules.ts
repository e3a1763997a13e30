import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, jsonb, text, uuid } from "drizzle-orm/pg-core";
import { SCHEDULE_OVERLAP_POLICIES } from "../../core/index.ts";
import { runledger, timestamps, tstz } from "./base.ts";
import { jobDefinitions } from "./jobs.ts";

/**
 * Cron schedules that materialize jobs; keyed by a unique name. Evaluated in `timezone` (an IANA
 * name). The cursor is `next_slot_at` (the slot it stands at; null on rows written before it
 * existed, where `next_fire_at` is the slot) and `next_fire_at` (when that slot is due, jitter
 * included).
 */
export const jobSchedules = runledger.table(
  "job_schedules",
  {
    id: uuid("id").primaryKey(),
    name: text("name").notNull().unique("uq_job_schedules_name"),
    jobType: text("job_type")
      .notNull()
      .references(() => jobDefinitions.jobType, { onDelete: "restrict" }),
    organizationId: uuid("organization_id"),
    payloadTemplate: jsonb("payload_template").$type<unknown>().notNull().default({}),
    cronExpr: text("cron_expr").notNull(),
    timezone: text("timezone").notNull().default("UTC"),
    isActive: boolean("is_active").notNull().default(true),
    nextFireAt: tstz("next_fire_at").notNull(),
    lastFiredAt: tstz("last_fired_at"),
    maxJitterSeconds: integer("max_jitter_seconds").notNull().default(0),
    nextSlotAt: tstz("next_slot_at"),
    overlapPolicy: text("overlap_policy", { enum: SCHEDULE_OVERLAP_POLICIES }).notNull().default("ALLOW"),
    catchupWindowSeconds: integer("catchup_window_seconds").notNull().default(0),
    // The slot BUFFER_ONE holds until the job of the previous fire has finished.
    bufferedSlotAt: tstz("buffered_slot_at"),
    // The job of the latest fire (no foreign key: jobs may be deleted), for the overlap policy.
    lastJobId: uuid("last_job_id"),
    missedSlotCount: bigint("missed_slot_count", { mode: "number" }).notNull().default(0),
    overlapSkipCount: bigint("overlap_skip_count", { mode: "number" }).notNull().default(0),
    createdByUserId: uuid("created_by_user_id"),
    ...timestamps,
  },
  (t) => [
    check("ck_job_schedules_name_not_blank", sql`btrim(${t.name}) <> ''`),
    check("ck_job_schedules_cron_not_blank", sql`btrim(${t.cronExpr}) <> ''`),
    check("ck_job_schedules_timezone_not_blank", sql`btrim(${t.timezone}) <> ''`),
    check("ck_job_schedules_jitter_range", sql`${t.maxJitterSeconds} >= 0 and ${t.maxJitterSeconds} <= 86400`),
    check(
      "ck_job_schedules_overlap_policy",
      sql.raw(`overlap_policy in (${SCHEDULE_OVERLAP_POLICIES.map((p) => `'${p}'`).join(", ")})`),
    ),
    check("ck_job_schedules_catchup_window_non_negative", sql`${t.catchupWindowSeconds} >= 0`),
    index("idx_job_schedules_due").on(t.nextFireAt).where(sql`is_active`),
    index("idx_job_schedules_buffered").on(t.bufferedSlotAt).where(sql`is_active and buffered_slot_at is not null`),
  ],
);
