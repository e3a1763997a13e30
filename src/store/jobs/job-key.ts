import type { Executor } from "../db.ts";
import { findUnstartedKeyHolder, handOverKey, lockKey, replaceKeyHolder } from "../sql/jobs/job-key.ts";

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
