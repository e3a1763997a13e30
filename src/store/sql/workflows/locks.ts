import { type SQL, sql } from "drizzle-orm";
import { statement } from "../../query.ts";
import type { DbRow } from "../../rows.ts";
import { jobQueue, workflowRuns, workflowSteps } from "../../schema/index.ts";
import type { WorkflowRunRow, WorkflowStepRow } from "./rows.ts";

/*
 * How workflow operations lock a run (spec §6.8). Besides its rows, each run has an advisory
 * step-release lock: cancellation and retry take it exclusively, so no step of the run is released
 * while they rewrite it; job completions take it shared, waiting at most 5 s; appends and external
 * completions only try it. The key folds the run's UUID to 64 bits: (high half XOR low half) XOR
 * a namespace constant.
 */
const NAMESPACE = 0x72756e6c00000000n;
const MASK = (1n << 64n) - 1n;

/** The key of a run's step-release lock, as a bigint's text. */
export function stepReleaseLockKey(runId: string): string {
  const value = BigInt(`0x${runId.replaceAll("-", "")}`);
  const folded = ((value >> 64n) ^ (value & MASK) ^ NAMESPACE) & MASK;
  return BigInt.asIntN(64, folded).toString();
}

/**
 * `stepReleaseLockKey` computed by the database from a uuid expression, for statements that lock many
 * runs' keys at once: the two halves of the UUID as signed 64-bit integers, XORed with each other
 * and the namespace (bitwise the same as the unsigned fold).
 */
export const stepReleaseLockKeySql = (id: SQL): SQL =>
  sql`(('x' || left(replace(${id}::text, '-', ''), 16))::bit(64)::bigint
    # ('x' || right(replace(${id}::text, '-', ''), 16))::bit(64)::bigint
    # ${BigInt.asIntN(64, NAMESPACE).toString()}::bigint)`;

/**
 * The step-release lock's statements, each taking the run's `key`: `tryShare` (never waits; `ok`
 * false while a cancellation or retry holds it), `share` (waits, up to `lock_timeout`),
 * `exclusive` (cancellation, retry: waits for in-flight completions and releases), and around a
 * bounded shared wait: `boundTimeout` sets the transaction's `lock_timeout` to 5 s, keeping a
 * stricter one the caller set, and returns the setting `restoreTimeout` puts back; the savepoint
 * makes a timeout fail the wait and not the caller's transaction.
 */
export const stepReleaseLock = {
  tryShare: statement<{ ok: boolean }>(
    "runledger_workflow_try_share_release_lock",
    sql`select pg_try_advisory_xact_lock_shared(${sql.placeholder("key")}::bigint) as ok`,
  ),
  share: statement(
    "runledger_workflow_share_release_lock",
    sql`select pg_advisory_xact_lock_shared(${sql.placeholder("key")}::bigint)`,
  ),
  exclusive: statement(
    "runledger_workflow_exclusive_release_lock",
    sql`select pg_advisory_xact_lock(${sql.placeholder("key")}::bigint)`,
  ),
  boundTimeout: statement<{ previous: string }>(
    "runledger_workflow_bound_lock_timeout",
    sql`select current_setting('lock_timeout') as previous,
      set_config('lock_timeout', case
        when current_setting('lock_timeout') not in ('0', '0ms') and current_setting('lock_timeout')::interval < interval '5s'
        then current_setting('lock_timeout') else '5s' end, true)`,
  ),
  restoreTimeout: statement(
    "runledger_workflow_restore_lock_timeout",
    sql`select set_config('lock_timeout', ${sql.placeholder("previous")}::text, true)`,
  ),
  savepoint: sql`savepoint runledger_step_release_lock`,
  releaseSavepoint: sql`release savepoint runledger_step_release_lock`,
  rollbackToSavepoint: sql`rollback to savepoint runledger_step_release_lock`,
};

/** Lock a run row for the rest of the transaction; no row when the run does not exist. */
export const lockRunRow = statement<Pick<WorkflowRunRow, "status">>(
  "runledger_workflow_lock_run",
  sql`select status from ${workflowRuns} where id = ${sql.placeholder("runId")}::uuid for no key update`,
);

/**
 * Lock the run `visible` (a condition over its row, e.g. its organization) sees, and read it:
 * `for update` before a rewrite of its status (cancel, retry), `for no key update` before an append.
 */
export function lockVisibleRun(runId: string, visible: SQL, strength: "update" | "no key update"): SQL {
  return sql`select r.* from ${workflowRuns} r where r.id = ${runId} and ${visible} for ${sql.raw(strength)}`;
}

/** The run, or no row, when `visible` (a condition over its row) sees it; read without a lock. */
export function visibleRunId(runId: string, visible: SQL): SQL {
  return sql`select r.id from ${workflowRuns} r where r.id = ${runId} and ${visible}`;
}

/** Lock the job rows of a run's steps, in job id order. */
export const lockRunJobs = statement<Pick<DbRow<typeof jobQueue>, "id">>(
  "runledger_workflow_lock_run_jobs",
  sql`select j.id from ${jobQueue} j join ${workflowSteps} s on s.job_id = j.id
    where s.workflow_run_id = ${sql.placeholder("runId")}::uuid order by j.id for update of j`,
);

/** Lock every step of a run, in id order, and read them. */
export const lockRunSteps = statement<WorkflowStepRow>(
  "runledger_workflow_lock_run_steps",
  sql`select * from ${workflowSteps} where workflow_run_id = ${sql.placeholder("runId")}::uuid order by id for update`,
);

/** Whether the transaction re-reads rows committed while it waited for a lock (read committed). */
export const readsCommitted = statement<{ ok: boolean }>(
  "runledger_workflow_reads_committed",
  sql`select current_setting('transaction_isolation') in ('read committed', 'read uncommitted') as ok`,
);
