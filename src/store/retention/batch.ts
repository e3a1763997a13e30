import type { SQL } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { textArrayLiteral } from "../query.ts";
import {
  batchPlannerOff,
  batchPlannerRestore,
  jobLogsOfJobsDelete,
  type LedgerCountsRow,
  purgeCutoff,
} from "../sql/retention.ts";
import { fail, isValidDate } from "../validate.ts";

/** Rows per transaction unless a caller asks for another size: short locks, small WAL bursts. */
export const DEFAULT_PURGE_BATCH = 1_000;
/** The largest batch a caller may ask for. */
export const MAX_PURGE_BATCH = 10_000;

/** What a purge deleted, table by table (`batches`: transactions that deleted something). */
export interface PurgeCounts {
  jobs: number;
  attempts: number;
  events: number;
  logs: number;
  deadLetters: number;
  batches: number;
}

export const noCounts = (): PurgeCounts => ({ jobs: 0, attempts: 0, events: 0, logs: 0, deadLetters: 0, batches: 0 });

/** The bounds every purge takes, checked before any statement runs. */
export interface PurgeBounds {
  /** Delete what finished before this instant, or more than this many milliseconds before `now`. */
  olderThan: Date | number;
  /** Most jobs (or runs) this call deletes; default: no bound. */
  limit?: number;
  /** Jobs (or workflow steps) per transaction; default 1,000, at most 10,000. */
  batchSize?: number;
  /** The clock `olderThan` in milliseconds counts back from; default the database's. */
  now?: Date;
}

const invalid = (field: string): never => fail("retention.invalid_input", { field });

/**
 * `retention.invalid_input` naming the field unless the bounds are usable; returns the cutoff
 * (`purgeCutoff`), the limit and the batch size.
 */
export function checkBounds(bounds: PurgeBounds): { cutoff: SQL; limit: number; batchSize: number } {
  const { olderThan, now } = bounds;
  if (now !== undefined && !isValidDate(now)) invalid("now");
  if (typeof olderThan === "number") {
    if (!Number.isSafeInteger(olderThan) || olderThan < 0) invalid("olderThan");
  } else if (!isValidDate(olderThan)) {
    invalid("olderThan");
  }
  const cutoff = purgeCutoff(olderThan, now);
  const limit = bounds.limit ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(limit) || limit < 1) invalid("limit");
  const batchSize = bounds.batchSize ?? DEFAULT_PURGE_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_PURGE_BATCH) invalid("batchSize");
  return { cutoff, limit, batchSize };
}

/** `retention.invalid_input` unless `values` is a non-empty list drawn from `allowed`. */
export function checkStatuses<S extends string>(values: readonly unknown[] | undefined, allowed: readonly S[]): S[] {
  if (values === undefined) return [...allowed];
  if (!Array.isArray(values) || values.length === 0) return invalid("statuses");
  for (const value of values) if (!allowed.includes(value as S)) invalid("statuses");
  return [...new Set(values as S[])];
}

/** Add one statement's counts to `into`. */
export function addCounts(into: PurgeCounts, row: Partial<LedgerCountsRow> | undefined): void {
  if (row === undefined) return;
  into.jobs += Number(row.jobs ?? 0);
  into.attempts += Number(row.attempts ?? 0);
  into.events += Number(row.events ?? 0);
  into.logs += Number(row.logs ?? 0);
  into.deadLetters += Number(row.dead_letters ?? 0);
}

/**
 * Delete the log lines of the jobs a purge statement deleted (`counts.ids`, comma-separated) that
 * it could not see: inserted by a transaction that committed after the statement's snapshot but
 * before it locked the job. Later ones cannot come (`insertJobLog` key-share locks the job row,
 * and finds it gone).
 */
export async function deleteStragglerLogs(
  tx: Executor,
  counts: (Partial<LedgerCountsRow> & { ids?: string | null }) | undefined,
): Promise<void> {
  const text = typeof counts?.ids === "string" ? counts.ids : "";
  if (counts === undefined || text === "") return;
  const [row] = await jobLogsOfJobsDelete.run(tx, { jobIds: textArrayLiteral(text.split(",")) });
  counts.logs = Number(counts.logs ?? 0) + Number(row?.n ?? 0);
}

/**
 * Run `work` in a transaction of its own (a savepoint inside the caller's) with sequential and
 * bitmap scans switched off. The candidate select must walk its index in order and stop at the
 * batch size: with stale statistics the planner preferred a bitmap scan and a sort of every
 * old-enough row (0.4 s per batch of 1,000 at 25,000 eligible rows, growing with the backlog). The
 * delete triggers' joins (which unlink steps from deleted jobs) likewise turned into sequential
 * scans of the steps (0.23 s). Every statement here has an index that serves it, so this only
 * removes the plans that do not scale. JIT is off as well: the disabled scans' cost penalty (and
 * large row estimates) pushed these small statements over `jit_above_cost`, and compiling took
 * 2.9 of 3.4 s of a run batch's lock statement in the soak. Inside a caller's transaction the
 * settings are put back afterwards; a transaction of our own just ends.
 */
export async function batchTransaction<T>(executor: Executor, work: (tx: Executor) => Promise<T>): Promise<T> {
  const nested = "rollback" in executor;
  return executor.transaction(async (tx) => {
    const [previous] = await batchPlannerOff.run(tx, {});
    const result = await work(tx);
    if (nested) {
      await batchPlannerRestore.run(tx, {
        seqscan: previous?.seqscan ?? "on",
        bitmapscan: previous?.bitmapscan ?? "on",
        jit: previous?.jit ?? "on",
      });
    }
    return result;
  });
}
