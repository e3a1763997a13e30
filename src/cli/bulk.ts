import { JOB_STATUSES, type JobStatus } from "../core/index.ts";
import { cancelJobs, countJobs, type JobBulkFilter, requeueJobs } from "../store/index.ts";
import { type CommandContext, choiceArg, intArg, timeArg } from "./command.ts";
import { json, num, UsageError } from "./output.ts";

/*
 * Acting by filter (`jobs cancel|requeue`, `dead-letters requeue` without ids): the filter flags,
 * a dry run that counts, and `--yes` to act. Without one of those two nothing happens.
 */

/** The filter flags of a bulk action. */
export const BULK_OPTIONS = {
  status: { type: "string", multiple: true },
  type: { type: "string" },
  "created-after": { type: "string" },
  "created-before": { type: "string" },
  "finished-after": { type: "string" },
  "finished-before": { type: "string" },
  limit: { type: "string" },
  reason: { type: "string" },
  "dry-run": { type: "boolean" },
  yes: { type: "boolean", short: "y" },
} as const;

export const BULK_USAGE = `By filter (no ids): at least one of
  --status S (repeatable), --type TYPE (exact), --created-after/--created-before T,
  --finished-after/--finished-before T   (T: ISO time, or an age: 30m, 2h, 7d)
  --limit N     act on at most N jobs (default 10,000)
and either --dry-run (count what would change) or --yes (change it, in batches of 500).`;

const FILTER_FLAGS = ["status", "type", "created-after", "created-before", "finished-after", "finished-before"];

/** Whether the flags ask for a bulk action (any filter flag). */
export function isBulk(ctx: CommandContext): boolean {
  return (
    FILTER_FLAGS.some((flag) => ctx.values[flag] !== undefined) ||
    ctx.values.yes === true ||
    ctx.values["dry-run"] === true
  );
}

/** The filter of the flags, with `fixed` (such as the dead letters' status) applied. */
export function bulkFilter(ctx: CommandContext, fixed: Partial<JobBulkFilter> = {}): JobBulkFilter {
  const v = ctx.values as Record<string, string | string[] | undefined>;
  if (!FILTER_FLAGS.some((flag) => v[flag] !== undefined) && fixed.statuses === undefined) {
    throw new UsageError("name jobs by id, or give a filter (--status, --type, --created-…, --finished-…)");
  }
  const statuses = (v.status as string[] | undefined)?.map((s) => choiceArg<JobStatus>(s, "status", JOB_STATUSES));
  return {
    scope: ctx.scope,
    statuses,
    jobType: v.type as string | undefined,
    createdAfter: timeArg(v["created-after"] as string | undefined, "created-after"),
    createdBefore: timeArg(v["created-before"] as string | undefined, "created-before"),
    finishedAfter: timeArg(v["finished-after"] as string | undefined, "finished-after"),
    finishedBefore: timeArg(v["finished-before"] as string | undefined, "finished-before"),
    limit: intArg(v.limit as string | undefined, "limit", 10_000, 1_000_000),
    ...fixed,
  };
}

/**
 * Count (`--dry-run`) or act (`--yes`) by filter. JSON: `{"dryRun":true,"matched","wouldChange",
 * "capped"}` or `{"dryRun":false,"changed","batches"}`.
 */
export async function runBulk(
  ctx: CommandContext,
  action: "cancel" | "requeue",
  filter: JobBulkFilter,
): Promise<number> {
  const dryRun = ctx.values["dry-run"] === true;
  if (dryRun === (ctx.values.yes === true)) {
    throw new UsageError(`by filter: pass --dry-run to count the jobs, or --yes to ${action} them`);
  }
  const reason = ctx.values.reason as string | undefined;
  const db = ctx.db();
  if (dryRun) {
    const count = await countJobs(db, filter);
    const wouldChange = action === "cancel" ? count.cancelable : count.requeueable;
    if (ctx.json) json(ctx.out, { dryRun: true, matched: count.matched, wouldChange, capped: count.capped });
    else {
      const more = count.capped ? "+ (stopped at --limit)" : "";
      const why = action === "cancel" ? "pending or running" : "finished and not a workflow step's";
      ctx.out.write(
        `dry run: ${num(count.matched)}${more} jobs match; ${num(wouldChange)} would be ${action === "cancel" ? "canceled" : "requeued"} (${why})\n`,
      );
      ctx.out.write(`pass --yes instead of --dry-run to ${action} them\n`);
    }
    return 0;
  }
  const result =
    action === "cancel" ? await cancelJobs(db, { ...filter, reason }) : await requeueJobs(db, { ...filter, reason });
  if (ctx.json) json(ctx.out, { dryRun: false, changed: result.count, batches: result.batches });
  else
    ctx.out.write(
      `${action === "cancel" ? "canceled" : "requeued"} ${num(result.count)} jobs (${result.batches === 1 ? "1 batch" : `${result.batches} batches`})\n`,
    );
  return 0;
}
