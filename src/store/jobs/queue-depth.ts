import { sql } from "drizzle-orm";
import type { OrganizationScope } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import { jobQueue } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";

/** Due pending jobs of one job type. */
export interface QueueDepth {
  jobType: string;
  /** Pending jobs whose run-at has come. */
  depth: number;
  /** Seconds since the run-at of the oldest of them (database clock). */
  oldestAgeSeconds: number;
}

/** Most job types one read reports. */
const MAX_TYPES = 1000;

/**
 * How many pending jobs are due, and how long the oldest has waited, per job type in `scope`
 * (at most 1,000 types, deepest first). It counts through the claim index's pending rows, so its
 * cost grows with the backlog: for gauges sampled every few seconds, not for every request.
 */
export async function readQueueDepth(executor: Executor, input: { scope: OrganizationScope }): Promise<QueueDepth[]> {
  const visible = scopeCondition(sql`organization_id`, input?.scope);
  try {
    const rows = await queryRows<{ job_type: string; depth: number; oldest: number }>(
      executor,
      sql`select job_type, count(*)::int as depth,
          greatest(extract(epoch from now() - min(next_run_at)), 0)::float8 as oldest
        from ${jobQueue}
        where finished_at is null and status = 'PENDING' and next_run_at <= now() and ${visible}
        group by job_type
        order by depth desc, job_type
        limit ${MAX_TYPES}`,
    );
    return rows.map((row) => ({ jobType: row.job_type, depth: row.depth, oldestAgeSeconds: row.oldest }));
  } catch (error) {
    throw toQueryError(error);
  }
}
