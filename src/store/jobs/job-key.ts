import { sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { JOBS_CHANNEL } from "../notify.ts";
import { statement } from "../query.ts";
import { jobDefinitions, jobQueue } from "../schema/index.ts";

/*
 * Job keys. The holder of a key is found through `uq_job_queue_job_key`, whose key holds the
 * organization as the nil UUID when there is none. Every step is one guarded statement, so a
 * concurrent claim simply wins or loses the row:
 * 1. a holder that has not started (PENDING, attempt 0) takes the request (or is kept): one
 *    round trip and no transaction, the common case of a debounce;
 * 2. otherwise, in a transaction holding an advisory lock on the key (so enqueues of one key
 *    take turns here and the insert cannot collide with another's), step 1 again, then any
 *    holder that has started or finished gives the key up, and the new job is inserted with it.
 * Without the lock, 20 enqueuers racing two claimers on one key lost ten rounds in a row.
 */
const KEY_MATCH = sql`j.job_type = ${sql.placeholder("jobType")}
    and coalesce(j.organization_id, '00000000-0000-0000-0000-000000000000'::uuid)
      = coalesce(${sql.placeholder("organizationId")}::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
    and j.job_key = ${sql.placeholder("key")}`;

const UNSTARTED = sql`j.status = 'PENDING' and j.attempt = 0`;

const replaceKeyHolder = statement<{ id: string }>(
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

const findUnstartedKeyHolder = statement<{ id: string }>(
  "runledger_enqueue_find_key_holder",
  sql`select j.id from ${jobQueue} j where ${KEY_MATCH} and ${UNSTARTED}
    and exists (select 1 from ${jobDefinitions} d where d.job_type = j.job_type and d.is_enabled)`,
);

const lockKey = statement(
  "runledger_enqueue_lock_job_key",
  sql`select pg_advisory_xact_lock(hashtextextended('runledger.job_key:' || ${sql.placeholder("jobType")}::text || ':'
    || coalesce(${sql.placeholder("organizationId")}::text, '') || ':' || ${sql.placeholder("key")}::text, 0))`,
);

const handOverKey = statement(
  "runledger_enqueue_hand_over_key",
  sql`update ${jobQueue} j set job_key = null, updated_at = now() where ${KEY_MATCH} and not (${UNSTARTED})`,
);

/** Which key: a job type, an organization or none, and the key. */
export type JobKeyMatch = {
  jobType: string;
  organizationId: string | null;
  key: string | null;
};

/** What a request does to an unstarted holder: `preserve` keeps it, the others rewrite it. */
export type JobKeyRequest = {
  mode: "replace" | "preserve" | "debounce" | null;
  payload: string;
  priority: number | null;
  maxAttempts: number | null;
  timeoutSeconds: number | null;
  concurrencyKey: string | null;
  nextRunAt: string | null;
  delayMs: number | null;
  maxWaitMs: number | null;
};

/** Step 1: the id of the unstarted holder that took (or, for `preserve`, kept) the request, if any. */
export async function takeJobKeyRequest(
  executor: Executor,
  match: JobKeyMatch,
  request: JobKeyRequest,
): Promise<string | undefined> {
  const { mode, ...values } = request;
  const [holder] =
    mode === "preserve"
      ? await findUnstartedKeyHolder.run(executor, match)
      : await replaceKeyHolder.run(executor, { ...match, ...values });
  return holder?.id;
}

/** Step 2 starts here, in a transaction: enqueues of one key take turns until it commits. */
export async function lockJobKey(tx: Executor, match: JobKeyMatch): Promise<void> {
  await lockKey.run(tx, match);
}

/** Free the key from a holder that has started or finished, for the new job to take. */
export async function handOverJobKey(tx: Executor, match: JobKeyMatch): Promise<void> {
  await handOverKey.run(tx, match);
}
