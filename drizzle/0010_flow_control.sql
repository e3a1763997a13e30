CREATE TABLE "runledger"."flow_key_limits" (
	"pattern" text PRIMARY KEY NOT NULL,
	"max_concurrency" integer,
	"rate_limit" integer,
	"rate_interval_ms" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_flow_key_limits_pattern_not_blank" CHECK (btrim("runledger"."flow_key_limits"."pattern") <> ''),
	CONSTRAINT "ck_flow_key_limits_max_concurrency_positive" CHECK ("runledger"."flow_key_limits"."max_concurrency" is null or "runledger"."flow_key_limits"."max_concurrency" > 0),
	CONSTRAINT "ck_flow_key_limits_rate_limit" CHECK (("runledger"."flow_key_limits"."rate_limit" is null) = ("runledger"."flow_key_limits"."rate_interval_ms" is null) and ("runledger"."flow_key_limits"."rate_limit" is null or ("runledger"."flow_key_limits"."rate_limit" > 0 and "runledger"."flow_key_limits"."rate_interval_ms" > 0))),
	CONSTRAINT "ck_flow_key_limits_some_limit" CHECK ("runledger"."flow_key_limits"."max_concurrency" is not null or "runledger"."flow_key_limits"."rate_limit" is not null)
);
--> statement-breakpoint
CREATE TABLE "runledger"."flow_rate_starts" (
	"scope" text NOT NULL,
	"job_id" uuid NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runledger"."flow_slots" (
	"scope" text NOT NULL,
	"job_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pk_flow_slots" PRIMARY KEY("scope","job_id")
);
--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD COLUMN "paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD COLUMN "max_concurrency" integer;--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD COLUMN "max_concurrency_per_key" integer;--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD COLUMN "rate_limit" integer;--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD COLUMN "rate_interval_ms" integer;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD COLUMN "concurrency_key" text;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" ADD COLUMN "concurrency_key" text;--> statement-breakpoint
CREATE INDEX "idx_flow_rate_starts_scope_expires" ON "runledger"."flow_rate_starts" USING btree ("scope","expires_at");--> statement-breakpoint
CREATE INDEX "idx_job_definitions_flow" ON "runledger"."job_definitions" USING btree ("job_type") WHERE paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null or rate_limit is not null;--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD CONSTRAINT "ck_job_definitions_max_concurrency_positive" CHECK ("runledger"."job_definitions"."max_concurrency" is null or "runledger"."job_definitions"."max_concurrency" > 0);--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD CONSTRAINT "ck_job_definitions_max_concurrency_per_key_positive" CHECK ("runledger"."job_definitions"."max_concurrency_per_key" is null or "runledger"."job_definitions"."max_concurrency_per_key" > 0);--> statement-breakpoint
ALTER TABLE "runledger"."job_definitions" ADD CONSTRAINT "ck_job_definitions_rate_limit" CHECK (("runledger"."job_definitions"."rate_limit" is null) = ("runledger"."job_definitions"."rate_interval_ms" is null) and ("runledger"."job_definitions"."rate_limit" is null or ("runledger"."job_definitions"."rate_limit" > 0 and "runledger"."job_definitions"."rate_interval_ms" > 0)));--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD CONSTRAINT "ck_job_queue_concurrency_key_not_blank" CHECK ("runledger"."job_queue"."concurrency_key" is null or btrim("runledger"."job_queue"."concurrency_key") <> '');