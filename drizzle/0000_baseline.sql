CREATE SCHEMA IF NOT EXISTS "runledger";
--> statement-breakpoint
CREATE TYPE "runledger"."claim_origin" AS ENUM('DIRECT', 'WORKER_PRESTART');--> statement-breakpoint
CREATE TYPE "runledger"."job_event_type" AS ENUM('ENQUEUED', 'LEASED', 'HEARTBEAT', 'STAGE_CHANGED', 'PROGRESS', 'RETRY_SCHEDULED', 'SUCCEEDED', 'FAILED', 'DEAD_LETTERED', 'CANCELED', 'REQUEUED');--> statement-breakpoint
CREATE TYPE "runledger"."job_failure_kind" AS ENUM('RETRYABLE', 'TERMINAL', 'PANICKED', 'TIMEOUT', 'LEASE_EXPIRED');--> statement-breakpoint
CREATE TYPE "runledger"."job_status" AS ENUM('PENDING', 'LEASED', 'SUCCEEDED', 'DEAD_LETTERED', 'CANCELED');--> statement-breakpoint
CREATE TYPE "runledger"."workflow_dependency_release_mode" AS ENUM('ON_TERMINAL', 'ON_SUCCESS');--> statement-breakpoint
CREATE TYPE "runledger"."workflow_run_status" AS ENUM('RUNNING', 'WAITING_FOR_EXTERNAL', 'SUCCEEDED', 'COMPLETED_WITH_ERRORS', 'CANCELED');--> statement-breakpoint
CREATE TYPE "runledger"."workflow_step_execution_kind" AS ENUM('JOB', 'EXTERNAL');--> statement-breakpoint
CREATE TYPE "runledger"."workflow_step_status" AS ENUM('BLOCKED', 'WAITING_FOR_EXTERNAL', 'ENQUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED');--> statement-breakpoint
CREATE TABLE "runledger"."job_attempts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"job_id" uuid NOT NULL,
	"run_number" integer NOT NULL,
	"attempt" integer NOT NULL,
	"worker_id" text NOT NULL,
	"leased_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"outcome" "runledger"."job_failure_kind",
	"error_code" text,
	"error_message" text,
	"retry_delay_ms" bigint,
	"claim_origin" "runledger"."claim_origin" DEFAULT 'DIRECT' NOT NULL,
	"execution_started_persisted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uq_job_attempts_job_run_attempt" UNIQUE("job_id","run_number","attempt"),
	CONSTRAINT "ck_job_attempts_run_number_positive" CHECK ("runledger"."job_attempts"."run_number" > 0),
	CONSTRAINT "ck_job_attempts_attempt_positive" CHECK ("runledger"."job_attempts"."attempt" > 0),
	CONSTRAINT "ck_job_attempts_worker_id_not_blank" CHECK (btrim("runledger"."job_attempts"."worker_id") <> ''),
	CONSTRAINT "ck_job_attempts_retry_delay_non_negative" CHECK ("runledger"."job_attempts"."retry_delay_ms" is null or "runledger"."job_attempts"."retry_delay_ms" >= 0)
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_dead_letters" (
	"job_id" uuid PRIMARY KEY NOT NULL,
	"job_type" text NOT NULL,
	"organization_id" uuid,
	"run_number" integer NOT NULL,
	"attempt" integer NOT NULL,
	"error_code" text,
	"error_message" text,
	"payload_snapshot" jsonb NOT NULL,
	"checkpoint_snapshot" jsonb,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_dead_letters_attempt_positive" CHECK ("runledger"."job_dead_letters"."attempt" > 0)
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_definitions" (
	"job_type" text PRIMARY KEY NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"max_attempts" integer DEFAULT 8 NOT NULL,
	"default_timeout_seconds" integer DEFAULT 900 NOT NULL,
	"default_priority" integer DEFAULT 100 NOT NULL,
	"is_enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_definitions_job_type_not_blank" CHECK (btrim("runledger"."job_definitions"."job_type") <> ''),
	CONSTRAINT "ck_job_definitions_version_positive" CHECK ("runledger"."job_definitions"."version" > 0),
	CONSTRAINT "ck_job_definitions_max_attempts_positive" CHECK ("runledger"."job_definitions"."max_attempts" > 0),
	CONSTRAINT "ck_job_definitions_timeout_positive" CHECK ("runledger"."job_definitions"."default_timeout_seconds" > 0)
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "runledger"."job_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"job_id" uuid NOT NULL,
	"run_number" integer NOT NULL,
	"attempt" integer,
	"event_type" "runledger"."job_event_type" NOT NULL,
	"stage" text,
	"progress_done" bigint,
	"progress_total" bigint,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_events_attempt_positive" CHECK ("runledger"."job_events"."attempt" is null or "runledger"."job_events"."attempt" > 0)
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_logs" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "runledger"."job_logs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"job_id" uuid NOT NULL,
	"run_number" integer NOT NULL,
	"attempt" integer,
	"level" text NOT NULL,
	"message" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_logs_run_number_positive" CHECK ("runledger"."job_logs"."run_number" > 0),
	CONSTRAINT "ck_job_logs_attempt_non_negative" CHECK ("runledger"."job_logs"."attempt" is null or "runledger"."job_logs"."attempt" >= 0),
	CONSTRAINT "ck_job_logs_level_not_blank" CHECK (btrim("runledger"."job_logs"."level") <> ''),
	CONSTRAINT "ck_job_logs_message_not_blank" CHECK (btrim("runledger"."job_logs"."message") <> '')
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_queue" (
	"id" uuid PRIMARY KEY NOT NULL,
	"job_type" text NOT NULL,
	"organization_id" uuid,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" "runledger"."job_status" DEFAULT 'PENDING' NOT NULL,
	"priority" integer DEFAULT 100 NOT NULL,
	"run_number" integer DEFAULT 1 NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"timeout_seconds" integer DEFAULT 900 NOT NULL,
	"next_run_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"last_heartbeat_at" timestamp with time zone,
	"worker_id" text,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"stage" text DEFAULT 'queued' NOT NULL,
	"progress_done" bigint,
	"progress_total" bigint,
	"progress_pct" numeric GENERATED ALWAYS AS (case when progress_done is not null and progress_total > 0 then round(progress_done * 100.0 / progress_total, 2) end) STORED,
	"checkpoint" jsonb,
	"idempotency_key" text,
	"enqueue_request" jsonb,
	"status_reason" text,
	"last_error_code" text,
	"last_error_message" text,
	"workflow_step_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_queue_run_number_positive" CHECK ("runledger"."job_queue"."run_number" > 0),
	CONSTRAINT "ck_job_queue_attempt_non_negative" CHECK ("runledger"."job_queue"."attempt" >= 0),
	CONSTRAINT "ck_job_queue_max_attempts_positive" CHECK ("runledger"."job_queue"."max_attempts" > 0),
	CONSTRAINT "ck_job_queue_timeout_positive" CHECK ("runledger"."job_queue"."timeout_seconds" > 0),
	CONSTRAINT "ck_job_queue_stage_not_blank" CHECK (btrim("runledger"."job_queue"."stage") <> ''),
	CONSTRAINT "ck_job_queue_worker_id_not_blank" CHECK ("runledger"."job_queue"."worker_id" is null or btrim("runledger"."job_queue"."worker_id") <> ''),
	CONSTRAINT "ck_job_queue_idempotency_key_not_blank" CHECK ("runledger"."job_queue"."idempotency_key" is null or btrim("runledger"."job_queue"."idempotency_key") <> ''),
	CONSTRAINT "ck_job_queue_idempotency_enqueue_request" CHECK ("runledger"."job_queue"."idempotency_key" is null or "runledger"."job_queue"."enqueue_request" is not null),
	CONSTRAINT "ck_job_queue_progress" CHECK (("runledger"."job_queue"."progress_done" is null or "runledger"."job_queue"."progress_done" >= 0) and ("runledger"."job_queue"."progress_total" is null or "runledger"."job_queue"."progress_total" >= 0) and ("runledger"."job_queue"."progress_done" is null or "runledger"."job_queue"."progress_total" is null or "runledger"."job_queue"."progress_done" <= "runledger"."job_queue"."progress_total")),
	CONSTRAINT "ck_job_queue_lease_shape" CHECK ("runledger"."job_queue"."status" <> 'LEASED' or ("runledger"."job_queue"."worker_id" is not null and "runledger"."job_queue"."lease_expires_at" is not null and "runledger"."job_queue"."attempt" > 0)),
	CONSTRAINT "ck_job_queue_finished_shape" CHECK ("runledger"."job_queue"."status" in ('PENDING', 'LEASED') or "runledger"."job_queue"."finished_at" is not null)
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_runtime_configs" (
	"job_type" text PRIMARY KEY NOT NULL,
	"schema_version" integer NOT NULL,
	"config" jsonb NOT NULL,
	"updated_by_user_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_job_runtime_configs_schema_version_positive" CHECK ("runledger"."job_runtime_configs"."schema_version" > 0),
	CONSTRAINT "ck_job_runtime_configs_config_object" CHECK (jsonb_typeof("runledger"."job_runtime_configs"."config") = 'object')
);
--> statement-breakpoint
CREATE TABLE "runledger"."job_schedules" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"job_type" text NOT NULL,
	"organization_id" uuid,
	"payload_template" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"cron_expr" text NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"next_fire_at" timestamp with time zone NOT NULL,
	"last_fired_at" timestamp with time zone,
	"max_jitter_seconds" integer DEFAULT 0 NOT NULL,
	"created_by_user_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uq_job_schedules_name" UNIQUE("name"),
	CONSTRAINT "ck_job_schedules_name_not_blank" CHECK (btrim("runledger"."job_schedules"."name") <> ''),
	CONSTRAINT "ck_job_schedules_cron_not_blank" CHECK (btrim("runledger"."job_schedules"."cron_expr") <> ''),
	CONSTRAINT "ck_job_schedules_timezone_utc" CHECK ("runledger"."job_schedules"."timezone" = 'UTC'),
	CONSTRAINT "ck_job_schedules_jitter_range" CHECK ("runledger"."job_schedules"."max_jitter_seconds" >= 0 and "runledger"."job_schedules"."max_jitter_seconds" <= 86400)
);
--> statement-breakpoint
CREATE TABLE "runledger"."workflow_run_mutations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workflow_run_id" uuid NOT NULL,
	"mutation_key" text NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uq_workflow_run_mutations_run_key" UNIQUE("workflow_run_id","mutation_key"),
	CONSTRAINT "ck_workflow_run_mutations_key_not_blank" CHECK (btrim("runledger"."workflow_run_mutations"."mutation_key") <> '')
);
--> statement-breakpoint
CREATE TABLE "runledger"."workflow_runs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workflow_type" text NOT NULL,
	"organization_id" uuid,
	"status" "runledger"."workflow_run_status" DEFAULT 'RUNNING' NOT NULL,
	"idempotency_key" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"enqueue_request" jsonb,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_workflow_runs_workflow_type_not_blank" CHECK (btrim("runledger"."workflow_runs"."workflow_type") <> ''),
	CONSTRAINT "ck_workflow_runs_idempotency_key_not_blank" CHECK ("runledger"."workflow_runs"."idempotency_key" is null or btrim("runledger"."workflow_runs"."idempotency_key") <> ''),
	CONSTRAINT "ck_workflow_runs_idempotency_enqueue_request" CHECK ("runledger"."workflow_runs"."idempotency_key" is null or "runledger"."workflow_runs"."enqueue_request" is not null)
);
--> statement-breakpoint
CREATE TABLE "runledger"."workflow_step_dependencies" (
	"workflow_run_id" uuid NOT NULL,
	"prerequisite_step_id" uuid NOT NULL,
	"dependent_step_id" uuid NOT NULL,
	"release_mode" "runledger"."workflow_dependency_release_mode" DEFAULT 'ON_TERMINAL' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pk_workflow_step_dependencies" PRIMARY KEY("workflow_run_id","prerequisite_step_id","dependent_step_id"),
	CONSTRAINT "ck_workflow_step_dependencies_no_self_edge" CHECK ("runledger"."workflow_step_dependencies"."prerequisite_step_id" <> "runledger"."workflow_step_dependencies"."dependent_step_id")
);
--> statement-breakpoint
CREATE TABLE "runledger"."workflow_steps" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workflow_run_id" uuid NOT NULL,
	"step_key" text NOT NULL,
	"execution_kind" "runledger"."workflow_step_execution_kind" DEFAULT 'JOB' NOT NULL,
	"job_type" text,
	"priority" integer,
	"max_attempts" integer,
	"timeout_seconds" integer,
	"stage" text,
	"organization_id" uuid,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" "runledger"."workflow_step_status" DEFAULT 'BLOCKED' NOT NULL,
	"job_id" uuid,
	"released_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"dependency_count_total" integer DEFAULT 0 NOT NULL,
	"dependency_count_pending" integer DEFAULT 0 NOT NULL,
	"dependency_count_unsatisfied" integer DEFAULT 0 NOT NULL,
	"status_reason" text,
	"last_error_code" text,
	"last_error_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uq_workflow_steps_run_step_key" UNIQUE("workflow_run_id","step_key"),
	CONSTRAINT "uq_workflow_steps_run_id" UNIQUE("workflow_run_id","id"),
	CONSTRAINT "ck_workflow_steps_step_key_not_blank" CHECK (btrim("runledger"."workflow_steps"."step_key") <> ''),
	CONSTRAINT "chk_workflow_steps_execution_shape" CHECK (("runledger"."workflow_steps"."execution_kind" = 'JOB' and "runledger"."workflow_steps"."job_type" is not null and "runledger"."workflow_steps"."priority" is not null and "runledger"."workflow_steps"."max_attempts" is not null and "runledger"."workflow_steps"."timeout_seconds" is not null and "runledger"."workflow_steps"."stage" is not null)
        or ("runledger"."workflow_steps"."execution_kind" = 'EXTERNAL' and "runledger"."workflow_steps"."job_type" is null and "runledger"."workflow_steps"."priority" is null and "runledger"."workflow_steps"."max_attempts" is null and "runledger"."workflow_steps"."timeout_seconds" is null and "runledger"."workflow_steps"."stage" is null and "runledger"."workflow_steps"."job_id" is null)),
	CONSTRAINT "ck_workflow_steps_max_attempts_positive" CHECK ("runledger"."workflow_steps"."max_attempts" is null or "runledger"."workflow_steps"."max_attempts" > 0),
	CONSTRAINT "ck_workflow_steps_timeout_positive" CHECK ("runledger"."workflow_steps"."timeout_seconds" is null or "runledger"."workflow_steps"."timeout_seconds" > 0),
	CONSTRAINT "ck_workflow_steps_dependency_counts" CHECK ("runledger"."workflow_steps"."dependency_count_total" >= 0 and "runledger"."workflow_steps"."dependency_count_pending" >= 0 and "runledger"."workflow_steps"."dependency_count_unsatisfied" >= 0 and "runledger"."workflow_steps"."dependency_count_pending" <= "runledger"."workflow_steps"."dependency_count_total" and "runledger"."workflow_steps"."dependency_count_unsatisfied" <= "runledger"."workflow_steps"."dependency_count_total")
);
--> statement-breakpoint
ALTER TABLE "runledger"."job_dead_letters" ADD CONSTRAINT "job_dead_letters_job_id_job_queue_id_fk" FOREIGN KEY ("job_id") REFERENCES "runledger"."job_queue"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."job_dead_letters" ADD CONSTRAINT "job_dead_letters_job_type_job_definitions_job_type_fk" FOREIGN KEY ("job_type") REFERENCES "runledger"."job_definitions"("job_type") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD CONSTRAINT "job_queue_job_type_job_definitions_job_type_fk" FOREIGN KEY ("job_type") REFERENCES "runledger"."job_definitions"("job_type") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD CONSTRAINT "job_queue_workflow_step_id_workflow_steps_id_fk" FOREIGN KEY ("workflow_step_id") REFERENCES "runledger"."workflow_steps"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."job_runtime_configs" ADD CONSTRAINT "job_runtime_configs_job_type_job_definitions_job_type_fk" FOREIGN KEY ("job_type") REFERENCES "runledger"."job_definitions"("job_type") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."job_schedules" ADD CONSTRAINT "job_schedules_job_type_job_definitions_job_type_fk" FOREIGN KEY ("job_type") REFERENCES "runledger"."job_definitions"("job_type") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_run_mutations" ADD CONSTRAINT "workflow_run_mutations_workflow_run_id_workflow_runs_id_fk" FOREIGN KEY ("workflow_run_id") REFERENCES "runledger"."workflow_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_step_dependencies" ADD CONSTRAINT "fk_workflow_step_dependencies_prerequisite" FOREIGN KEY ("workflow_run_id","prerequisite_step_id") REFERENCES "runledger"."workflow_steps"("workflow_run_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_step_dependencies" ADD CONSTRAINT "fk_workflow_step_dependencies_dependent" FOREIGN KEY ("workflow_run_id","dependent_step_id") REFERENCES "runledger"."workflow_steps"("workflow_run_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" ADD CONSTRAINT "workflow_steps_workflow_run_id_workflow_runs_id_fk" FOREIGN KEY ("workflow_run_id") REFERENCES "runledger"."workflow_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" ADD CONSTRAINT "workflow_steps_job_type_job_definitions_job_type_fk" FOREIGN KEY ("job_type") REFERENCES "runledger"."job_definitions"("job_type") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" ADD CONSTRAINT "workflow_steps_job_id_job_queue_id_fk" FOREIGN KEY ("job_id") REFERENCES "runledger"."job_queue"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idx_job_attempts_created" ON "runledger"."job_attempts" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "idx_job_dead_letters_failed" ON "runledger"."job_dead_letters" USING btree ("failed_at");--> statement-breakpoint
CREATE INDEX "idx_job_events_job_run" ON "runledger"."job_events" USING btree ("job_id","run_number","id");--> statement-breakpoint
CREATE INDEX "idx_job_events_type_occurred" ON "runledger"."job_events" USING btree ("event_type","occurred_at");--> statement-breakpoint
CREATE INDEX "idx_job_logs_job_run" ON "runledger"."job_logs" USING btree ("job_id","run_number","id");--> statement-breakpoint
CREATE INDEX "idx_job_logs_level_occurred" ON "runledger"."job_logs" USING btree ("level","occurred_at");--> statement-breakpoint
CREATE UNIQUE INDEX "uq_job_queue_type_idempotency_org" ON "runledger"."job_queue" USING btree ("job_type","organization_id","idempotency_key") WHERE idempotency_key is not null and organization_id is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_job_queue_type_idempotency_global" ON "runledger"."job_queue" USING btree ("job_type","idempotency_key") WHERE idempotency_key is not null and organization_id is null;--> statement-breakpoint
CREATE INDEX "idx_job_queue_claim" ON "runledger"."job_queue" USING btree ("priority" DESC NULLS LAST,"next_run_at","created_at","id") WHERE status = 'PENDING';--> statement-breakpoint
CREATE INDEX "idx_job_queue_leased_expiry" ON "runledger"."job_queue" USING btree ("lease_expires_at") WHERE status = 'LEASED';--> statement-breakpoint
CREATE UNIQUE INDEX "uq_job_queue_workflow_step_id" ON "runledger"."job_queue" USING btree ("workflow_step_id") WHERE workflow_step_id is not null;--> statement-breakpoint
CREATE INDEX "idx_job_queue_org_created" ON "runledger"."job_queue" USING btree ("organization_id","created_at","id") WHERE organization_id is not null;--> statement-breakpoint
CREATE INDEX "idx_job_queue_created" ON "runledger"."job_queue" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_job_schedules_due" ON "runledger"."job_schedules" USING btree ("next_fire_at") WHERE is_active;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_workflow_runs_type_idempotency_org" ON "runledger"."workflow_runs" USING btree ("workflow_type","organization_id","idempotency_key") WHERE idempotency_key is not null and organization_id is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_workflow_runs_type_idempotency_global" ON "runledger"."workflow_runs" USING btree ("workflow_type","idempotency_key") WHERE idempotency_key is not null and organization_id is null;--> statement-breakpoint
CREATE INDEX "idx_workflow_runs_status_created" ON "runledger"."workflow_runs" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "idx_workflow_runs_created" ON "runledger"."workflow_runs" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_workflow_step_dependencies_prerequisite" ON "runledger"."workflow_step_dependencies" USING btree ("prerequisite_step_id");--> statement-breakpoint
CREATE INDEX "idx_workflow_step_dependencies_dependent" ON "runledger"."workflow_step_dependencies" USING btree ("dependent_step_id");--> statement-breakpoint
CREATE INDEX "idx_workflow_steps_run_status_created" ON "runledger"."workflow_steps" USING btree ("workflow_run_id","status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "uq_workflow_steps_job_id" ON "runledger"."workflow_steps" USING btree ("job_id") WHERE job_id is not null;