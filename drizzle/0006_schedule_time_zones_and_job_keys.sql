ALTER TABLE "runledger"."job_schedules" DROP CONSTRAINT "ck_job_schedules_timezone_utc";--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD COLUMN "schedule_id" uuid;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD COLUMN "scheduled_for" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD COLUMN "job_key" text;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "next_slot_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "overlap_policy" text DEFAULT 'ALLOW' NOT NULL;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "catchup_window_seconds" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "buffered_slot_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "last_job_id" uuid;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "missed_slot_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD COLUMN "overlap_skip_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_job_queue_schedule_slot" ON "runledger"."job_queue" USING btree ("schedule_id","scheduled_for") WHERE schedule_id is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_job_queue_job_key" ON "runledger"."job_queue" USING btree ("job_type",coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid),"job_key") WHERE job_key is not null;--> statement-breakpoint
CREATE INDEX "idx_job_schedules_buffered" ON "runledger"."job_schedules" USING btree ("buffered_slot_at") WHERE is_active and buffered_slot_at is not null;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD CONSTRAINT "ck_job_queue_schedule_slot" CHECK (("runledger"."job_queue"."schedule_id" is null) = ("runledger"."job_queue"."scheduled_for" is null));--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD CONSTRAINT "ck_job_queue_job_key_not_blank" CHECK ("runledger"."job_queue"."job_key" is null or btrim("runledger"."job_queue"."job_key") <> '');--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD CONSTRAINT "ck_job_schedules_timezone_not_blank" CHECK (btrim("runledger"."job_schedules"."timezone") <> '');--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD CONSTRAINT "ck_job_schedules_overlap_policy" CHECK (overlap_policy in ('ALLOW', 'SKIP', 'BUFFER_ONE'));--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD CONSTRAINT "ck_job_schedules_catchup_window_non_negative" CHECK ("runledger"."job_schedules"."catchup_window_seconds" >= 0);