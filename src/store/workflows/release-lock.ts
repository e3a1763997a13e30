import { type SQL, sql } from "drizzle-orm";
import { RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { queryRows } from "../query.ts";
import { workflowRuns } from "../schema/index.ts";

/**
 * Each run has an advisory "release lock" (spec §6.8): cancellation takes it exclusively; job
 * completions take it shared, waiting at most 5 s; releases and external completions only try.
 * The key folds the run's UUID to 64 bits: (high half XOR low half) XOR a namespace constant.
 */
const NAMESPACE = 0x72756e6c00000000n;
const MASK = (1n << 64n) - 1n;

export function releaseLockKey(runId: string): string {
  const value = BigInt(`0x${runId.replaceAll("-", "")}`);
  const folded = ((value >> 64n) ^ (value & MASK) ^ NAMESPACE) & MASK;
  return BigInt.asIntN(64, folded).toString();
}

/**
 * `releaseLockKey` computed by the database from a uuid expression, for statements that lock many
 * runs' keys at once: the two halves of the UUID as signed 64-bit integers, XORed with each other
 * and the namespace (bitwise the same as the unsigned fold).
 */
export const releaseLockKeySql = (id: SQL): SQL =>
  sql`(('x' || left(replace(${id}::text, '-', ''), 16))::bit(64)::bigint
    # ('x' || right(replace(${id}::text, '-', ''), 16))::bit(64)::bigint
    # ${BigInt.asIntN(64, NAMESPACE).toString()}::bigint)`;

/** Shared lock without waiting; `workflow.release_conflict` while a cancellation holds it. */
export async function tryShareReleaseLock(tx: Executor, runId: string): Promise<void> {
  const [row] = await queryRows<{ ok: boolean }>(
    tx,
    sql`select pg_try_advisory_xact_lock_shared(${releaseLockKey(runId)}::bigint) as ok`,
  );
  if (!row?.ok) throw new RunledgerError("workflow.release_conflict", { details: { workflowRunId: runId } });
}

/**
 * Shared lock, waiting up to 5 s for an in-flight cancellation (a stricter caller
 * `lock_timeout` is kept); `workflow.release_conflict` if the wait times out.
 */
export async function shareReleaseLock(tx: Executor, runId: string): Promise<void> {
  const [row] = await queryRows<{ previous: string }>(
    tx,
    sql`select current_setting('lock_timeout') as previous,
      set_config('lock_timeout', case
        when current_setting('lock_timeout') not in ('0', '0ms') and current_setting('lock_timeout')::interval < interval '5s'
        then current_setting('lock_timeout') else '5s' end, true)`,
  );
  try {
    await tx.execute(sql`savepoint runledger_release_lock`);
    await tx.execute(sql`select pg_advisory_xact_lock_shared(${releaseLockKey(runId)}::bigint)`);
    await tx.execute(sql`release savepoint runledger_release_lock`);
  } catch (error) {
    const code =
      (error as { cause?: { code?: string }; code?: string }).cause?.code ?? (error as { code?: string }).code;
    if (code !== "55P03") throw error;
    await tx.execute(sql`rollback to savepoint runledger_release_lock`);
    throw new RunledgerError("workflow.release_conflict", { details: { workflowRunId: runId }, cause: error });
  } finally {
    await tx.execute(sql`select set_config('lock_timeout', ${row?.previous ?? "0"}, true)`);
  }
}

/** Exclusive lock for cancellation; waits for in-flight completions and releases. */
export async function exclusiveReleaseLock(tx: Executor, runId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${releaseLockKey(runId)}::bigint)`);
}

/** Release-sensitive operations rely on re-reading rows committed while they waited. */
export async function requireReadCommitted(
  tx: Executor,
  code:
    | "workflow.terminal_completion_unsupported_isolation"
    | "workflow.external_completion_unsupported_isolation"
    | "workflow.cancel_unsupported_isolation"
    | "workflow.append_unsupported_isolation"
    | "workflow.retry_unsupported_isolation"
    | "workflow.enqueue_idempotency_unsupported_isolation",
): Promise<void> {
  const [row] = await queryRows<{ ok: boolean }>(
    tx,
    sql`select current_setting('transaction_isolation') in ('read committed', 'read uncommitted') as ok`,
  );
  if (!row?.ok) throw new RunledgerError(code);
}

/**
 * `workflow.run_not_found` unless the run is `visible` (a condition on its row, e.g. its
 * organization), read without a lock.
 * Scoped rewrites check this before they lock anything: otherwise another organization that
 * knows a run id could queue behind its completions and stall them. A run's organization never
 * changes, so the unlocked read stays true; the locked read that follows checks it again.
 */
export async function requireVisibleRun(tx: Executor, runId: string, visible: SQL): Promise<void> {
  const [row] = await queryRows<{ id: string }>(
    tx,
    sql`select id from ${workflowRuns} where id = ${runId} and ${visible}`,
  );
  if (row === undefined) throw new RunledgerError("workflow.run_not_found");
}
