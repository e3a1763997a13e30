import type { OrganizationScope } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { jobScope, type QueueDepthRow, queueDepth } from "../sql/jobs/reads.ts";
import { fail, isValidDate } from "../validate.ts";

/** Due pending jobs of one job type. */
export interface QueueDepth {
  jobType: string;
  /** Pending jobs whose run-at has come. */
  depth: number;
  /** Seconds since the run-at of the oldest of them (database clock, or the `now` given). */
  oldestAgeSeconds: number;
}

/** Most job types one read reports. */
const MAX_TYPES = 1000;

/**
 * How many pending jobs are due, and how long the oldest has waited, per job type in `scope`
 * (at most 1,000 types, deepest first). It counts through the claim index's pending rows, so its
 * cost grows with the backlog: for gauges sampled every few seconds, not for every request.
 */
export async function readQueueDepth(
  executor: Executor,
  input: {
    scope: OrganizationScope;
    /** Count the jobs due at this time instead of the database's now (tests, replays). */
    now?: Date;
  },
): Promise<QueueDepth[]> {
  const visible = jobScope(input?.scope);
  if (input.now !== undefined && !isValidDate(input.now)) fail("job.invalid_pagination", { field: "now" });
  const rows = await translating(() => queryRows<QueueDepthRow>(executor, queueDepth(visible, input.now, MAX_TYPES)));
  return rows.map((row) => ({ jobType: row.job_type, depth: row.depth, oldestAgeSeconds: row.oldest }));
}
