-- The ledger on the job row (see src/store/schema/jobs.ts, "The ledger"): the job row holds the
-- attempt it runs or that succeeded, the views job_attempts and job_events put it back together
-- with the logs, and existing databases move their current attempts onto their job rows.
--
-- An attempt held by a job row has no id of its own: this one is a UUIDv7 made of the lease time
-- (48-bit Unix milliseconds) and the id its LEASED event drew from the event sequence (unique), so
-- it is unique, time-ordered and the same every time it is read, and the row written to
-- job_attempt_log when the attempt leaves the job row keeps it.
CREATE FUNCTION "runledger"."attempt_id"(leased_at timestamptz, lease_event_id bigint) RETURNS uuid
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM leased_at) * 1000)::bigint), 12, '0') || '7000'
    || to_hex(8 | (lease_event_id >> 60)::int) || lpad(to_hex(lease_event_id & 1152921504606846975), 15, '0'))::uuid
$$;
--> statement-breakpoint
-- Existing current attempts (of LEASED and SUCCEEDED jobs) move onto their job rows, keeping their
-- LEASED and SUCCEEDED event ids; their rows leave the logs, so the views show each exactly once.
-- An attempt without its LEASED event stays a row (the view then shows it from the log).
CREATE TEMPORARY TABLE "moved_attempts" ON COMMIT DROP AS
SELECT j.id AS job_id, a.id AS attempt_row_id, a.worker_id, a.leased_at, a.claim_origin,
  a.execution_started_persisted_at, l.id AS lease_event_id, l.stage AS lease_stage,
  (l.payload ->> 'lease_duration_seconds')::int AS lease_seconds, s.id AS finish_event_id
FROM "runledger"."job_queue" j
JOIN "runledger"."job_attempt_log" a ON a.job_id = j.id AND a.run_number = j.run_number AND a.attempt = j.attempt
JOIN LATERAL (
  SELECT e.id, e.stage, e.payload FROM "runledger"."job_event_log" e
  WHERE e.job_id = j.id AND e.run_number = j.run_number AND e.attempt = j.attempt AND e.event_type = 'LEASED'
  ORDER BY e.id DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
  SELECT e.id FROM "runledger"."job_event_log" e
  WHERE j.status = 'SUCCEEDED' AND e.job_id = j.id AND e.run_number = j.run_number AND e.attempt = j.attempt
    AND e.event_type = 'SUCCEEDED'
  ORDER BY e.id DESC LIMIT 1
) s ON true
WHERE j.status IN ('LEASED', 'SUCCEEDED') AND j.attempt > 0;
--> statement-breakpoint
UPDATE "runledger"."job_queue" j SET
  worker_id = m.worker_id,
  leased_at = m.leased_at,
  lease_seconds = m.lease_seconds,
  lease_stage = m.lease_stage,
  claim_origin = m.claim_origin,
  execution_started_at = m.execution_started_persisted_at,
  lease_event_id = m.lease_event_id,
  finish_event_id = m.finish_event_id
FROM "moved_attempts" m
WHERE j.id = m.job_id;
--> statement-breakpoint
DELETE FROM "runledger"."job_attempt_log" a USING "moved_attempts" m WHERE a.id = m.attempt_row_id;
--> statement-breakpoint
DELETE FROM "runledger"."job_event_log" e USING "moved_attempts" m
WHERE e.id = m.lease_event_id OR e.id = m.finish_event_id;
--> statement-breakpoint
CREATE VIEW "runledger"."job_attempts" AS
SELECT id, job_id, run_number, attempt, worker_id, leased_at, started_at, finished_at, outcome, error_code,
  error_message, retry_delay_ms, claim_origin, execution_started_persisted_at, created_at
FROM "runledger"."job_attempt_log"
UNION ALL
SELECT "runledger"."attempt_id"(j.leased_at, j.lease_event_id), j.id, j.run_number, j.attempt, j.worker_id,
  j.leased_at, j.leased_at, CASE WHEN j.status = 'SUCCEEDED' THEN j.finished_at END, NULL::"runledger"."job_failure_kind",
  NULL::text, NULL::text, NULL::bigint, j.claim_origin, j.execution_started_at, j.leased_at
FROM "runledger"."job_queue" j
WHERE j.status IN ('LEASED', 'SUCCEEDED') AND j.lease_event_id IS NOT NULL;
--> statement-breakpoint
CREATE VIEW "runledger"."job_events" AS
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
WHERE j.status = 'SUCCEEDED' AND j.finish_event_id IS NOT NULL;
--> statement-breakpoint
-- The metrics view named the tables, which are the logs now: it reads the views instead. Failures
-- are always log rows; successes and durations include the attempts held by job rows.
CREATE OR REPLACE VIEW "runledger"."job_metrics_rollup" AS
WITH queue AS (
  SELECT organization_id, job_type,
    count(*) FILTER (WHERE status = 'PENDING') AS pending_count,
    count(*) FILTER (WHERE status = 'LEASED') AS leased_count,
    count(*) FILTER (WHERE status = 'LEASED' AND lease_expires_at < now()) AS stale_leases
  FROM "runledger"."job_queue"
  GROUP BY organization_id, job_type
),
attempts AS (
  SELECT q.organization_id, q.job_type,
    count(*) FILTER (WHERE a.outcome = 'RETRYABLE') AS retryable_24h,
    count(*) FILTER (WHERE a.outcome = 'TERMINAL') AS terminal_24h,
    count(*) FILTER (WHERE a.outcome = 'PANICKED') AS panicked_24h,
    count(*) FILTER (WHERE a.outcome = 'TIMEOUT') AS timeout_24h,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - a.started_at) * 1000) AS p50_duration_ms_24h,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - a.started_at) * 1000) AS p95_duration_ms_24h
  FROM "runledger"."job_attempts" a
  JOIN "runledger"."job_queue" q ON q.id = a.job_id
  WHERE a.created_at >= now() - interval '24 hours' AND a.finished_at IS NOT NULL
  GROUP BY q.organization_id, q.job_type
),
successes AS (
  SELECT q.organization_id, q.job_type, count(*) AS succeeded_24h
  FROM "runledger"."job_events" e
  JOIN "runledger"."job_queue" q ON q.id = e.job_id
  WHERE e.event_type = 'SUCCEEDED' AND e.occurred_at >= now() - interval '24 hours'
  GROUP BY q.organization_id, q.job_type
),
dead AS (
  SELECT organization_id, job_type, count(*) AS dead_lettered_24h
  FROM "runledger"."job_dead_letters"
  WHERE failed_at >= now() - interval '24 hours'
  GROUP BY organization_id, job_type
),
keys AS (
  SELECT organization_id, job_type FROM queue
  UNION SELECT organization_id, job_type FROM attempts
  UNION SELECT organization_id, job_type FROM successes
  UNION SELECT organization_id, job_type FROM dead
)
SELECT
  k.organization_id,
  k.job_type,
  coalesce(q.pending_count, 0)::bigint AS pending_count,
  coalesce(q.leased_count, 0)::bigint AS leased_count,
  coalesce(q.stale_leases, 0)::bigint AS stale_leases,
  coalesce(s.succeeded_24h, 0)::bigint AS succeeded_24h,
  coalesce(a.retryable_24h, 0)::bigint AS retryable_24h,
  coalesce(a.terminal_24h, 0)::bigint AS terminal_24h,
  coalesce(a.panicked_24h, 0)::bigint AS panicked_24h,
  coalesce(a.timeout_24h, 0)::bigint AS timeout_24h,
  coalesce(d.dead_lettered_24h, 0)::bigint AS dead_lettered_24h,
  a.p50_duration_ms_24h,
  a.p95_duration_ms_24h
FROM keys k
LEFT JOIN queue q ON q.organization_id IS NOT DISTINCT FROM k.organization_id AND q.job_type = k.job_type
LEFT JOIN attempts a ON a.organization_id IS NOT DISTINCT FROM k.organization_id AND a.job_type = k.job_type
LEFT JOIN successes s ON s.organization_id IS NOT DISTINCT FROM k.organization_id AND s.job_type = k.job_type
LEFT JOIN dead d ON d.organization_id IS NOT DISTINCT FROM k.organization_id AND d.job_type = k.job_type;
--> statement-breakpoint
-- Room on each page for a claimed row's new version, so the claim's update is HOT. The claimed
-- version is ~1.3× the enqueued one (it holds the attempt): at fillfactor 50 a third of the claims
-- found no room (9–10 µs of server CPU per claimed job), at 40 all do (~7–9 µs). Attempt rows are
-- written once now and never updated: they need no room.
ALTER TABLE "runledger"."job_queue" SET (fillfactor = 40);
--> statement-breakpoint
ALTER TABLE "runledger"."job_attempt_log" RESET (fillfactor);
