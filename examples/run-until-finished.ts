// Shared by the workflow examples: run a supervisor until one workflow run has finished.
import type { Supervisor } from "runledger/runtime";
import { getWorkflowRunById, type RunledgerDb } from "runledger/store";

const FINISHED = ["SUCCEEDED", "COMPLETED_WITH_ERRORS", "CANCELED"];

/** Run the supervisor until the workflow run has finished (or `timeoutMs` passes), then shut it down. */
export async function runUntilFinished(
  db: RunledgerDb,
  supervisor: Supervisor,
  runId: string,
  timeoutMs = 30_000,
): Promise<void> {
  const finished = new AbortController();
  const check = () => {
    getWorkflowRunById(db, runId).then(
      (run) => {
        if (run && FINISHED.includes(run.status)) finished.abort();
      },
      (error: unknown) => finished.abort(error),
    );
  };
  supervisor.on("job:succeeded", check);
  supervisor.on("job:dead_lettered", check);
  check(); // an idempotent re-run of an example finds the run already finished
  await supervisor.runUntilShutdown(AbortSignal.any([finished.signal, AbortSignal.timeout(timeoutMs)]), 5_000);
}
