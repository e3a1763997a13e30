import { newId, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { propagate, recomputeRuns } from "../sql/workflows/propagate.ts";

/**
 * Carry steps' ends to their dependents, transitively, in one statement (the rules are in
 * sql/workflows/propagate.ts): `finished` steps have just become terminal and are counted against
 * their dependents; `decide` steps already have their counters right. Dependents whose last
 * prerequisite is counted are released, or canceled as `workflow.dependency_unsatisfied` and
 * counted in turn. The caller holds the runs' rows locked, and their step-release lock (shared,
 * or exclusive for a rewrite) unless nobody else can see the run yet (enqueue) or it takes the lock
 * once it knows a step was released (append). Returns the steps it wrote: each one's status after,
 * and whether it was released.
 */
export async function propagateSteps(
  tx: Executor,
  change: { finished?: readonly string[]; decide?: readonly string[] },
) {
  const finished = change.finished ?? [];
  const decide = change.decide ?? [];
  if (finished.length === 0 && decide.length === 0) return [];
  return propagate.run(tx, { finished: [...finished], decide: [...decide], jobBase: newId() });
}

/** Re-derive a run's status from its steps (the run row locked by the caller). */
export async function recomputeRunStatus(tx: Executor, runId: string): Promise<void> {
  await recomputeRunStatuses(tx, [runId]);
}

/** `recomputeRunStatus` for many runs, all locked by the caller, in one statement. */
export async function recomputeRunStatuses(tx: Executor, runIds: readonly string[]): Promise<void> {
  if (runIds.length > 0) await recomputeRuns.run(tx, { runIds: [...runIds] });
}

/** `workflow.internal_state`: a row the engine wrote contradicts another. */
export function internalState(detail: string, details: Record<string, unknown> = {}): RunledgerError {
  return new RunledgerError("workflow.internal_state", { details, internal: detail });
}
