import { isTerminalWorkflowStepStatus, newId, RunledgerError, type WorkflowStepStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { stepReleaseLockKey } from "../sql/workflows/locks.ts";
import {
  lockSettledSteps,
  type SettledStep,
  settleAndDecide,
  settledParams,
  tryLockSettlingRun,
  tryLockSettlingRuns,
} from "../sql/workflows/settle.ts";
import { internalState, propagateSteps, recomputeRunStatuses } from "./propagate.ts";
import { lockRun, shareStepReleaseLock } from "./run-locks.ts";

/** A job-backed step reaching a terminal status, decided inside the job's own transaction. */
export interface StepSettlement {
  jobId: string;
  stepId: string;
  status: Extract<WorkflowStepStatus, "SUCCEEDED" | "FAILED" | "CANCELED">;
  reason?: string | null;
  errorCode?: string | null;
  errorMessage?: string | null;
}

/**
 * Settle the step a terminal job backs, in the job's transaction (the job row is already locked):
 * the batch of one (`settleWorkflowSteps`).
 */
export async function settleWorkflowStep(tx: Executor, settlement: StepSettlement): Promise<void> {
  await settleWorkflowSteps(tx, [settlement]);
}

/**
 * Settle many job-backed steps in one transaction whose job rows are already locked: steps in id
 * order, then the runs' step-release locks (shared) and rows in run id order (a fixed lock order,
 * so concurrent batches cannot deadlock; if a cancellation holds a step-release lock, run by run,
 * waiting up to 5 s for it), one statement that marks the steps and decides their dependents, one
 * more for the dependents that canceled (only after a failure over an ON_SUCCESS edge, however far
 * it cascades), and one status derivation for all runs. Throws if any step's link to its job is
 * broken; steps already terminal are left alone.
 */
export async function settleWorkflowSteps(tx: Executor, settlements: readonly StepSettlement[]): Promise<void> {
  if (settlements.length === 0) return;
  const steps = await lockSettledSteps.run(tx, { stepIds: settlements.map((s) => s.stepId) });
  if (steps[0] !== undefined && !steps[0].read_committed) {
    throw new RunledgerError("workflow.terminal_completion_unsupported_isolation");
  }
  const byId = new Map(steps.map((step) => [step.id, step]));
  const runs = new Map<string, StepSettlement[]>();
  for (const settlement of settlements) {
    const step = byId.get(settlement.stepId);
    if (step === undefined || step.job_id !== settlement.jobId) {
      throw internalState("step/job linkage mismatch", { workflowStepId: settlement.stepId, jobId: settlement.jobId });
    }
    if (isTerminalWorkflowStepStatus(step.status)) continue;
    const run = runs.get(step.workflow_run_id) ?? [];
    run.push(settlement);
    runs.set(step.workflow_run_id, run);
  }
  if (runs.size === 0) return;
  const runIds = [...runs.keys()].sort();
  const locked = await tryLockSettlingRuns.run(tx, { keys: runIds.map(stepReleaseLockKey), runIds });
  if (locked.length !== runIds.length) {
    for (const runId of runIds) {
      const [lock] = await tryLockSettlingRun.run(tx, { key: stepReleaseLockKey(runId), runId });
      if (lock?.locked !== true) {
        // A cancellation holds the step-release lock: wait for it (bounded), then lock the run.
        await shareStepReleaseLock(tx, runId);
        await lockRun(tx, runId);
      }
    }
  }
  // The shared step-release locks are held from here to commit.
  const dependents = await settleAndDecide.run(tx, {
    ...settledParams(runIds.flatMap((runId) => runs.get(runId)!.map(settledStep))),
    jobBase: newId(),
  });
  // Dependents a failure left unsatisfiable were canceled; their own dependents are decided next,
  // as far as it reaches, in one statement (nothing to do, and no statement, after successes).
  await propagateSteps(tx, { finished: dependents.filter((d) => d.canceled).map((d) => d.id) });
  await recomputeRunStatuses(tx, runIds);
}

function settledStep(settlement: StepSettlement): SettledStep {
  const succeeded = settlement.status === "SUCCEEDED";
  return {
    stepId: settlement.stepId,
    status: settlement.status,
    reason: succeeded ? "SUCCEEDED" : (settlement.reason ?? settlement.status),
    errorCode: succeeded ? null : (settlement.errorCode ?? null),
    errorMessage: succeeded ? null : (settlement.errorMessage ?? null),
  };
}
