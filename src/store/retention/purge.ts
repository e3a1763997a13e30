import { type OrganizationScope, TERMINAL_JOB_STATUSES, type TerminalJobStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { finishedJobsPurge, type LedgerCountsRow, visibleRows } from "../sql/retention.ts";
import {
  addCounts,
  batchTransaction,
  checkBounds,
  checkStatuses,
  deleteStragglerLogs,
  noCounts,
  type PurgeBounds,
  type PurgeCounts,
} from "./batch.ts";

export interface PurgeFinishedInput extends PurgeBounds {
  /** Whose jobs: one organization, or `ALL_ORGANIZATIONS`. */
  scope: OrganizationScope;
  /** Which outcomes; default all three (SUCCEEDED, DEAD_LETTERED, CANCELED). */
  statuses?: readonly TerminalJobStatus[];
}

/*
 * Why batches through an index on finished_at (measured with `npm run bench -- --scenarios soak`,
 * numbers in the README's Retention section):
 * - The candidate select walks `idx_job_queue_finished` (finished_at, partial on finished jobs) from
 *   the oldest and stops at the cutoff, so a batch reads what it deletes and nothing else, however
 *   many live jobs the table holds. Scanning `idx_job_queue_created` instead walks every old live
 *   job (a backlog, jobs scheduled far ahead) on every batch. The index costs one entry per
 *   finished job; finishing was not HOT anyway (the row leaves the claim index), and its key is
 *   already named by the claim index's predicate, so no update that was HOT stops being HOT.
 * - `for update skip locked` makes the sweep leaderless: sweepers split the work, and one never
 *   waits for a row a requeue, a cancel or a log line holds (it takes it next time).
 * - One statement per batch: the job rows and their whole ledger go together or not at all.
 * - Plans: with stale statistics the candidate select became a bitmap scan plus a sort of every
 *   old-enough row (0.4 s per batch at 25,000 eligible rows), the delete trigger a scan of the
 *   steps (0.23 s), and JIT compiled them (2.9 of 3.4 s in a run batch): the batch transaction
 *   turns sequential and bitmap scans and JIT off (batch.ts), leaving index plans.
 * - Time partitions were not needed. In the 1,000,000-job soak (60 s retention, 2 shared cores,
 *   VACUUM every 30 s standing in for the server's disabled autovacuum) the sweep kept pace at up to
 *   ~2,000 jobs/s: nothing older than 65 s was left in samples, and the tables went 686 → 603 →
 *   569 MB over the last three quarters (1.3M dead tuples after the first, which ran unvacuumed).
 */

/**
 * Delete finished standalone jobs (no workflow step) of `statuses` that finished before
 * `olderThan`, with their attempts, events, log lines and dead letters, in batches of
 * `batchSize` — each batch one statement, so one transaction — until none is left or `limit`
 * jobs went. Jobs of workflow runs are never touched: they go with their run
 * (`purgeWorkflowRuns`). Rows another transaction holds are skipped, never waited for. Returns
 * what was deleted; `retention.invalid_input` (nothing deleted) for unusable bounds.
 */
export async function purgeFinished(executor: Executor, input: PurgeFinishedInput): Promise<PurgeCounts> {
  const visible = visibleRows(input.scope);
  const statuses = checkStatuses(input.statuses, TERMINAL_JOB_STATUSES);
  const { cutoff, limit, batchSize } = checkBounds(input);
  const totals = noCounts();
  return translating(async () => {
    while (totals.jobs < limit) {
      const size = Math.min(batchSize, limit - totals.jobs);
      const row = await batchTransaction(executor, async (tx) => {
        const [counts] = await queryRows<LedgerCountsRow & { ids: string | null }>(
          tx,
          finishedJobsPurge({ cutoff, statuses, visible, size }),
        );
        await deleteStragglerLogs(tx, counts);
        return counts;
      });
      const deleted = Number(row?.jobs ?? 0);
      if (deleted === 0) break;
      addCounts(totals, row);
      totals.batches++;
      if (deleted < size) break;
    }
    return totals;
  });
}
