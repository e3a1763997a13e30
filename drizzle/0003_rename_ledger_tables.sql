ALTER TABLE "runledger"."job_attempts" RENAME TO "job_attempt_log";--> statement-breakpoint
ALTER TABLE "runledger"."job_events" RENAME TO "job_event_log";--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" DROP CONSTRAINT "ck_job_attempts_run_number_positive";--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" DROP CONSTRAINT "ck_job_attempts_attempt_positive";--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" DROP CONSTRAINT "ck_job_attempts_worker_id_not_blank";--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" DROP CONSTRAINT "ck_job_attempts_retry_delay_non_negative";--> statement-breakpoint
ALTER TABLE "runledger"."job_event_log" DROP CONSTRAINT "ck_job_events_attempt_positive";--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" ADD CONSTRAINT "ck_job_attempts_run_number_positive" CHECK ("runledger"."job_attempt_log"."run_number" > 0);--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" ADD CONSTRAINT "ck_job_attempts_attempt_positive" CHECK ("runledger"."job_attempt_log"."attempt" > 0);--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" ADD CONSTRAINT "ck_job_attempts_worker_id_not_blank" CHECK (btrim("runledger"."job_attempt_log"."worker_id") <> '');--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" ADD CONSTRAINT "ck_job_attempts_retry_delay_non_negative" CHECK ("runledger"."job_attempt_log"."retry_delay_ms" is null or "runledger"."job_attempt_log"."retry_delay_ms" >= 0);--> statement-breakpoint
ALTER TABLE "runledger"."job_event_log" ADD CONSTRAINT "ck_job_events_attempt_positive" CHECK ("runledger"."job_event_log"."attempt" is null or "runledger"."job_event_log"."attempt" > 0);