-- updated_at maintenance. job_queue is left out on purpose: every job_queue write goes through
-- the store, which sets updated_at in the same statement, and a row trigger on the claim and
-- completion hot path costs measurable throughput.
CREATE OR REPLACE FUNCTION "runledger"."touch_updated_at"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_job_definitions_updated_at" BEFORE UPDATE ON "runledger"."job_definitions"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "trg_job_runtime_configs_updated_at" BEFORE UPDATE ON "runledger"."job_runtime_configs"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "trg_job_schedules_updated_at" BEFORE UPDATE ON "runledger"."job_schedules"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "trg_workflow_runs_updated_at" BEFORE UPDATE ON "runledger"."workflow_runs"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "trg_workflow_steps_updated_at" BEFORE UPDATE ON "runledger"."workflow_steps"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "trg_workflow_run_mutations_updated_at" BEFORE UPDATE ON "runledger"."workflow_run_mutations"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."touch_updated_at"();
--> statement-breakpoint
-- One row per (organization_id, job_type) with queue rows, recent attempts, recent dead letters
-- or recent successes. A null organization is a key of its own.
CREATE VIEW "runledger"."job_metrics_rollup" AS
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
-- Room on each page for the finished version of an attempt row, so the completion's update of a
-- row written moments earlier by the claim is HOT (no index entries). Measured on 500-job
-- batches: the batched success's attempt update went from 9.3 to 3.9 ms server time.
ALTER TABLE "runledger"."job_attempts" SET (fillfactor = 50);
