// Shared by the workflow examples: run a supervisor until one workflow run has finished.
import { ALL_ORGANIZATIONS } from "runledger/core";
import type { Supervisor } from "runledger/runtime";
import { type RunledgerDb, waitForWorkflowRun } from "runledger/store";

/** Run the supervisor until the workflow run has finished (or `timeoutMs` passes), then shut it down. */
export async function runUntilFinished(
  db: RunledgerDb,
  supervisor: Supervisor,
  runId: string,
  timeoutMs = 30_000,
): Promise<void> {
  // Resolves when the run finishes (at once for an idempotent re-run that finds it finished).
  const finished = waitForWorkflowRun(db, runId, { scope: ALL_ORGANIZATIONS, timeoutMs });
  await supervisor.runUntilShutdown(
    finished.then(
      () => undefined,
      () => undefined,
    ),
    5_000,
  );
  await finished;
}
