ALTER TABLE "runledger"."job_queue" ADD COLUMN "trace_context" text;--> statement-breakpoint
ALTER TABLE "runledger"."workflow_runs" ADD COLUMN "trace_context" text;