import { sql } from "drizzle-orm";
import { flowKeyLimits, flowRateStarts, flowSlots, jobDefinitions } from "../schema/index.ts";

/**
 * Whether any flow control is configured: a paused or limited job type (a probe of a partial
 * index that is empty without one) or a key limit. Uncorrelated, so a statement evaluates it once.
 */
export const flowConfigured = sql`(exists (select 1 from ${jobDefinitions}
    where paused_at is not null or max_concurrency is not null or max_concurrency_per_key is not null
      or rate_limit is not null)
    or exists (select 1 from ${flowKeyLimits}))`;

/**
 * The flow-controlled claim's candidates: the rows it admitted (already locked by it), plus the
 * slots and rate-window starts they take, written by the statement that leases them.
 */
export const flowLeaseCandidates = sql`candidates as (
    select unnest(${sql.placeholder("ids")}::uuid[]) as id
  ),
  slots_taken as (
    insert into ${flowSlots} (scope, job_id)
    select * from unnest(${sql.placeholder("slotScopes")}::text[], ${sql.placeholder("slotJobs")}::uuid[])
    on conflict do nothing
  ),
  starts_taken as (
    insert into ${flowRateStarts} (scope, job_id, started_at, expires_at)
    select r.scope, r.job_id, now(), now() + make_interval(secs => r.ms / 1000.0)
    from unnest(${sql.placeholder("rateScopes")}::text[], ${sql.placeholder("rateJobs")}::uuid[],
      ${sql.placeholder("rateMs")}::int[]) as r(scope, job_id, ms)
  )`;
