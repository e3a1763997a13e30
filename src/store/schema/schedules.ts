import { sql } from "drizzle-orm";
import { boolean, check, index, integer, jsonb, text, uuid } from "drizzle-orm/pg-core";
import { runledger, timestamps, tstz } from "./base.ts";
import { jobDefinitions } from "./jobs.ts";

/** Cron schedules that materialize jobs; keyed by a unique name. Always UTC. */
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
    createdByUserId: uuid("created_by_user_id"),
    ...timestamps,
  },
  (t) => [
    check("ck_job_schedules_name_not_blank", sql`btrim(${t.name}) <> ''`),
    check("ck_job_schedules_cron_not_blank", sql`btrim(${t.cronExpr}) <> ''`),
    check("ck_job_schedules_timezone_utc", sql`${t.timezone} = 'UTC'`),
    check("ck_job_schedules_jitter_range", sql`${t.maxJitterSeconds} >= 0 and ${t.maxJitterSeconds} <= 86400`),
    index("idx_job_schedules_due").on(t.nextFireAt).where(sql`is_active`),
  ],
);
