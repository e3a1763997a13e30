import { sql } from "drizzle-orm";
import { clockNow, statement } from "../../query.ts";
import { jobQueue } from "../../schema/index.ts";
import type { JobQueueRow } from "./ledger.ts";

/** An expired lease as expired-lease recovery reads it. */
export type ExpiredLeaseRow = Pick<
  JobQueueRow,
  "id" | "job_type" | "organization_id" | "run_number" | "attempt" | "max_attempts" | "payload"
> & {
  worker_id: string;
  /** A prestart claim whose execution start was never persisted: returned, not failed. */
  unstarted_prestart: boolean;
};

/**
 * Lock up to `limit` leases that ran out by the statement clock (`now`, else the server's), oldest
 * expiry first, skipping rows another pass holds. Prepared: every reaper pass runs it.
 */
export const lockExpiredLeases = statement<ExpiredLeaseRow>(
  "runledger_lock_expired_leases",
  sql`
  select j.id, j.job_type, j.organization_id, j.run_number, j.attempt, j.max_attempts, j.worker_id, j.payload,
    coalesce(j.claim_origin = 'WORKER_PRESTART' and j.execution_started_at is null, false) as unstarted_prestart
  from ${jobQueue} j
  -- No lease index (the claim's update would not be HOT): unfinished jobs through the claim index.
  where j.finished_at is null and j.status = 'LEASED' and j.lease_expires_at < ${clockNow}
  order by j.lease_expires_at, j.id
  limit ${sql.placeholder("limit")}
  for update of j skip locked
`,
);

/**
 * Push a lease whose recovery failed `delayMs` past the statement clock, so the next pass skips
 * it until then and one poison row cannot hold up the rest.
 */
export const deferExpiredLease = statement(
  "runledger_defer_expired_lease",
  sql`update ${jobQueue} set lease_expires_at = ${clockNow} + make_interval(secs => ${sql.placeholder("delayMs")}::double precision / 1000), updated_at = now()
  where id = ${sql.placeholder("id")}::uuid`,
);
