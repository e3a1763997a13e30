-- A job's ENQUEUED event is derived from its row (enqueue_event_id, enqueue_stage, job_type,
-- created_at) instead of being a row of job_event_log: enqueueing writes one row per job, as the
-- other queues do, and the event reads as before. Jobs enqueued before this migration keep their
-- logged event (their enqueue_event_id is null), so no event shows twice.
CREATE OR REPLACE VIEW "runledger"."job_events" AS
SELECT id, job_id, run_number, attempt, event_type, stage, progress_done, progress_total, payload, occurred_at
FROM "runledger"."job_event_log"
UNION ALL
SELECT j.lease_event_id, j.id, j.run_number, j.attempt, 'LEASED'::"runledger"."job_event_type", j.lease_stage,
  NULL::bigint, NULL::bigint, jsonb_build_object('worker_id', j.worker_id, 'lease_duration_seconds', j.lease_seconds),
  j.leased_at
FROM "runledger"."job_queue" j
WHERE j.status IN ('LEASED', 'SUCCEEDED') AND j.lease_event_id IS NOT NULL
UNION ALL
SELECT j.finish_event_id, j.id, j.run_number, j.attempt, 'SUCCEEDED'::"runledger"."job_event_type", 'completed',
  j.progress_done, j.progress_total, '{}'::jsonb, j.finished_at
FROM "runledger"."job_queue" j
WHERE j.status = 'SUCCEEDED' AND j.finish_event_id IS NOT NULL
UNION ALL
SELECT j.enqueue_event_id, j.id, 1, NULL::integer, 'ENQUEUED'::"runledger"."job_event_type", j.enqueue_stage,
  NULL::bigint, NULL::bigint, jsonb_build_object('job_type', j.job_type), j.created_at
FROM "runledger"."job_queue" j
WHERE j.enqueue_event_id IS NOT NULL;
