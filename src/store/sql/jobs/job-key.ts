import { sql } from "drizzle-orm";
import { JOBS_CHANNEL } from "../../notify.ts";
import { statement } from "../../query.ts";
import { jobDefinitions, jobQueue } from "../../schema/index.ts";

// The job-key statements; the steps they make and why are in jobs/job-key.ts.

/** The job holding the key (the expression `uq_job_queue_job_key` indexes), over a job row `j`. */
const KEY_MATCH = sql`j.job_type = ${sql.placeholder("jobType")}
    and coalesce(j.organization_id, '00000000-0000-0000-0000-000000000000'::uuid)
      = coalesce(${sql.placeholder("organizationId")}::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
    and j.job_key = ${sql.placeholder("key")}`;

/** A holder that has not started: PENDING and never claimed in its run. */
const UNSTARTED = sql`j.status = 'PENDING' and j.attempt = 0`;

/**
 * Step 1 (replace, debounce): an unstarted holder takes the request, unless its type was
 * disabled; workers hear of it when it is due. One statement, no transaction.
 */
export const replaceKeyHolder = statement<{ id: string }>(
  "runledger_enqueue_replace_key_holder",
  sql`
  with replaced as (
    update ${jobQueue} j set
      payload = ${sql.placeholder("payload")}::jsonb,
      priority = coalesce(${sql.placeholder("priority")}::int, j.priority),
      max_attempts = coalesce(${sql.placeholder("maxAttempts")}::int, j.max_attempts),
      timeout_seconds = coalesce(${sql.placeholder("timeoutSeconds")}::int, j.timeout_seconds),
      -- The key its flow limits apply to follows the request; a request without one keeps the
      -- job's, so a replace never lifts a limit off a job.
      concurrency_key = coalesce(${sql.placeholder("concurrencyKey")}::text, j.concurrency_key),
      -- least() ignores a null maximum wait.
      next_run_at = case when ${sql.placeholder("delayMs")}::bigint is null
        then coalesce(${sql.placeholder("nextRunAt")}::timestamptz, now())
        else least(now() + make_interval(secs => ${sql.placeholder("delayMs")}::bigint / 1000.0),
          j.created_at + make_interval(secs => ${sql.placeholder("maxWaitMs")}::bigint / 1000.0)) end,
      updated_at = now()
    where ${KEY_MATCH} and ${UNSTARTED}
      -- A disabled type takes no new requests, as a fresh enqueue would not.
      and exists (select 1 from ${jobDefinitions} d where d.job_type = j.job_type and d.is_enabled)
    returning j.id, j.next_run_at
  )
  select id, (select count(pg_notify(${JOBS_CHANNEL}, '')) from replaced where next_run_at <= now()) as notified
  from replaced
`,
);

/** Step 1 (preserve): the unstarted holder, kept as it is. */
export const findUnstartedKeyHolder = statement<{ id: string }>(
  "runledger_enqueue_find_key_holder",
  sql`select j.id from ${jobQueue} j where ${KEY_MATCH} and ${UNSTARTED}
    and exists (select 1 from ${jobDefinitions} d where d.job_type = j.job_type and d.is_enabled)`,
);

/** Step 2: enqueues of one key take turns until the transaction ends (an advisory lock on a hash of it). */
export const lockKey = statement(
  "runledger_enqueue_lock_job_key",
  sql`select pg_advisory_xact_lock(hashtextextended('runledger.job_key:' || ${sql.placeholder("jobType")}::text || ':'
    || coalesce(${sql.placeholder("organizationId")}::text, '') || ':' || ${sql.placeholder("key")}::text, 0))`,
);

/** Step 2: a holder that has started or finished gives the key up, for the new job to take. */
export const handOverKey = statement(
  "runledger_enqueue_hand_over_key",
  sql`update ${jobQueue} j set job_key = null, updated_at = now() where ${KEY_MATCH} and not (${UNSTARTED})`,
);
