ALTER TABLE "runledger"."job_queue" ADD COLUMN "enqueue_event_id" bigint;--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" ADD COLUMN "enqueue_stage" text;