import { MAX_WORKFLOW_STEPS, newId, type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { requeueLockedJobs } from "../sql/jobs/cancel.ts";
import { scopeCondition } from "../sql/scope.ts";
import { lockVisibleRun } from "../sql/workflows/locks.ts";
import {
  insertMutation,
  jobsWithIds,
  type RunEdge,
  readSteps,
  reblockSteps,
  reenqueueSteps,
  retryRecorded,
  runEdges,
  unlinkJobs,
} from "../sql/workflows/mutations.ts";
import { DEPENDENCY_UNSATISFIED, recountDependencies } from "../sql/workflows/propagate.ts";
import { readRun, runOrganization } from "../sql/workflows/reads.ts";
import type { WorkflowRunRow, WorkflowStepRow } from "../sql/workflows/rows.ts";
import { checkIdentifierLength, checkTextSize, fail, isBlank, isStorableText, isUuid, jsonText } from "../validate.ts";
import { internalState, propagateSteps, recomputeRunStatuses } from "./propagate.ts";
import { runFromRow, stepFromRow, type WorkflowRunRecord, type WorkflowStepRecord } from "./records.ts";
import { lockRunForRewrite, requireReadCommitted, requireVisibleRun } from "./run-locks.ts";

export interface RetryWorkflowRunInput {
  workflowRunId: string;
  /** The organization the run must belong to, or `ALL_ORGANIZATIONS`. */
  scope: OrganizationScope;
  /** Retry only these failed job steps; default: every failed job step of the run. */
  stepKeys?: readonly string[];
  /** The retried jobs' status reason and their REQUEUED events' `reason`; default `WORKFLOW_RETRY`. */
  reason?: string;
  /**
   * Idempotency key of this retry within the run (shared with `appendWorkflowSteps` keys):
   * repeating the same request returns `ALREADY_APPLIED`. Omitted: a fresh key.
   */
  mutationKey?: string;
  /** Stored with the run's mutation row. */
  mutationMetadata?: unknown;
  /** Clear the retried jobs' progress and checkpoints (default false: handlers resume from them). */
  resetCheckpoints?: boolean;
}

export interface RetryWorkflowRunResult {
  workflowRun: WorkflowRunRecord;
  /** Failed steps whose jobs were requeued as their next run (or, job gone, released anew). */
  retriedSteps: WorkflowStepRecord[];
  /** Steps canceled as `workflow.dependency_unsatisfied` that are BLOCKED again, waiting for the retried ones. */
  reopenedSteps: WorkflowStepRecord[];
  mutationKey: string;
  outcome: "RETRIED" | "ALREADY_APPLIED";
}

export const DEFAULT_RETRY_REASON = "WORKFLOW_RETRY";

function invalid(field: string): never {
  fail("workflow.retry_invalid_request", { field });
}

/** The request as compared for idempotency; nothing here depends on the run's state. */
function canonicalRequest(input: RetryWorkflowRunInput) {
  const { stepKeys, reason, resetCheckpoints } = input;
  if (stepKeys !== undefined) {
    if (!Array.isArray(stepKeys) || stepKeys.length === 0 || stepKeys.length > MAX_WORKFLOW_STEPS) invalid("stepKeys");
    for (const key of stepKeys) {
      if (isBlank(key) || !isStorableText(key)) invalid("stepKeys");
      checkIdentifierLength(key, "stepKeys");
    }
  }
  if (reason !== undefined && (isBlank(reason) || !isStorableText(reason))) invalid("reason");
  checkTextSize(reason, "reason");
  if (resetCheckpoints !== undefined && typeof resetCheckpoints !== "boolean") invalid("resetCheckpoints");
  return {
    kind: "RETRY",
    step_keys: stepKeys === undefined ? null : [...new Set(stepKeys)].sort(),
    reason: reason ?? null,
    reset_checkpoints: resetCheckpoints === true,
  };
}

/**
 * Which canceled steps a retry reopens: those canceled as dependency-unsatisfied (they never had a
 * job) whose every ON_SUCCESS prerequisite succeeded or gets another chance, the retried steps and
 * the steps reopened before them. Such a step always waits for at least one of those (the one
 * that left it unsatisfied), so none is ready at once.
 */
function reopenedBy(
  steps: readonly WorkflowStepRow[],
  edges: readonly RunEdge[],
  retried: ReadonlySet<string>,
): Set<string> {
  const status = new Map(steps.map((s) => [s.id, s.status]));
  const onSuccess = new Map<string, string[]>();
  for (const edge of edges) {
    if (edge.release_mode !== "ON_SUCCESS") continue;
    const list = onSuccess.get(edge.dependent_step_id) ?? [];
    list.push(edge.prerequisite_step_id);
    onSuccess.set(edge.dependent_step_id, list);
  }
  const again = new Set(retried);
  const reopened = new Set<string>();
  const candidates = steps.filter(
    (s) =>
      s.status === "CANCELED" && s.last_error_code === DEPENDENCY_UNSATISFIED && s.job_id === null && !again.has(s.id),
  );
  for (let grew = true; grew; ) {
    grew = false;
    for (const step of candidates) {
      if (reopened.has(step.id)) continue;
      const prerequisites = onSuccess.get(step.id) ?? [];
      if (prerequisites.every((p) => status.get(p) === "SUCCEEDED" || again.has(p))) {
        again.add(step.id);
        reopened.add(step.id);
        grew = true;
      }
    }
  }
  return reopened;
}

/**
 * Run a finished workflow run's failed job steps again, after the cause is fixed. Each retried
 * step's job is requeued as its next run (run number + 1, keeping its progress and checkpoint
 * unless `resetCheckpoints`, so the handler can resume; a REQUEUED event names the retry), the
 * steps its failure canceled as `workflow.dependency_unsatisfied` return to BLOCKED with their
 * counters recomputed, and the run is RUNNING again until it finishes as usual. A failed step
 * that must wait for another retried step (it ran after that one's failure, over an
 * `afterTerminal` edge) is released anew once that one finishes: a new job, its old one kept in
 * the ledger without the link (as is a step whose job was deleted). Steps that
 * already finished otherwise (successes, `afterTerminal` steps that ran, failed external gates,
 * canceled jobs) keep their outcome. A `workflow_run_mutations` row records the retry.
 *
 * Refused (nothing written): a RUNNING or WAITING_FOR_EXTERNAL run (`workflow.retry_run_live`;
 * retry once it finished, or cancel it), a CANCELED run (`workflow.retry_run_canceled`), a run
 * without failed job steps (`workflow.retry_nothing_to_retry`), a named step that does not exist
 * (`workflow.retry_step_not_found`) or is not a failed job step (`workflow.retry_step_not_failed`).
 *
 * Locks follow cancellation's order — the run's jobs, its exclusive step-release lock, the jobs again,
 * steps, run — so of two concurrent retries one applies and the other finds a live run (or, with
 * the same mutation key, `ALREADY_APPLIED`), and a cancel or completion racing it is ordered
 * before or after it as a whole.
 */
export async function retryWorkflowRun(
  executor: Executor,
  input: RetryWorkflowRunInput,
): Promise<RetryWorkflowRunResult> {
  const visible = scopeCondition(runOrganization, input.scope);
  if (!isUuid(input.workflowRunId)) fail("workflow.run_not_found");
  const request = canonicalRequest(input);
  if (input.mutationKey !== undefined && (isBlank(input.mutationKey) || !isStorableText(input.mutationKey))) {
    invalid("mutationKey");
  }
  checkIdentifierLength(input.mutationKey, "mutationKey");
  const metadata = jsonText(input.mutationMetadata ?? {}, "job.invalid_payload", "mutationMetadata");
  const mutationKey = input.mutationKey ?? `retry:${newId()}`;
  const runId = input.workflowRunId;
  const reason = input.reason ?? DEFAULT_RETRY_REASON;
  return translating(() =>
    executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.retry_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      const steps = await lockRunForRewrite(tx, runId);
      const [run] = await queryRows<WorkflowRunRow>(tx, lockVisibleRun(runId, visible, "update"));
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      const byKey = new Map(steps.map((s) => [s.step_key, s]));
      const stepsNamed = async (keys: readonly string[]) => {
        const ids = keys.map((key) => byKey.get(key)?.id).filter((id) => id !== undefined);
        return ids.length === 0 ? [] : (await readSteps.run(tx, { ids })).map(stepFromRow);
      };

      const [previous] = await retryRecorded.run(tx, { runId, mutationKey, request: JSON.stringify(request) });
      if (previous !== undefined) {
        if (!previous.same) throw new RunledgerError("workflow.retry_conflicting_retry");
        return {
          workflowRun: runFromRow(run),
          retriedSteps: await stepsNamed(previous.request.retried_step_keys ?? []),
          reopenedSteps: await stepsNamed(previous.request.reopened_step_keys ?? []),
          mutationKey,
          outcome: "ALREADY_APPLIED" as const,
        };
      }

      if (run.status === "CANCELED") throw new RunledgerError("workflow.retry_run_canceled");
      if (run.status === "RUNNING" || run.status === "WAITING_FOR_EXTERNAL") {
        throw new RunledgerError("workflow.retry_run_live", { details: { status: run.status } });
      }
      const failedJobStep = (s: WorkflowStepRow) => s.status === "FAILED" && s.execution_kind === "JOB";
      let retried: WorkflowStepRow[];
      if (request.step_keys === null) {
        retried = steps.filter(failedJobStep);
      } else {
        retried = request.step_keys.map((key) => {
          const step = byKey.get(key);
          if (step === undefined)
            throw new RunledgerError("workflow.retry_step_not_found", { details: { stepKey: key } });
          if (!failedJobStep(step)) {
            throw new RunledgerError("workflow.retry_step_not_failed", {
              details: { stepKey: key, status: step.status, executionKind: step.execution_kind },
            });
          }
          return step;
        });
      }
      if (retried.length === 0) throw new RunledgerError("workflow.retry_nothing_to_retry");

      const edges = await runEdges.run(tx, { runId });
      const reopened = reopenedBy(steps, edges, new Set(retried.map((s) => s.id)));
      // A retried step that ran after a prerequisite which now runs again (over an ON_TERMINAL
      // edge) must wait for it: it is released anew, with a new job, once that one finishes.
      const again = new Set([...retried.map((s) => s.id), ...reopened]);
      const waits = new Set(edges.filter((e) => again.has(e.prerequisite_step_id)).map((e) => e.dependent_step_id));
      const requeue = retried.filter((s) => s.job_id !== null && !waits.has(s.id));
      const renew = retried.filter((s) => !requeue.includes(s));

      if (requeue.length > 0) {
        // The failed jobs' next runs, each with a REQUEUED event that names this retry.
        const jobIds = requeue.map((s) => s.job_id!);
        const requeued = await requeueLockedJobs(tx, jobsWithIds(jobIds), {
          reason,
          keepProgress: !request.reset_checkpoints,
          event: { requeue_kind: "WORKFLOW_RETRY", workflow_run_id: runId, mutation_key: mutationKey },
        });
        if (requeued.length !== requeue.length) {
          throw internalState("a failed step's job is not finished", { workflowRunId: runId });
        }
        await reenqueueSteps.run(tx, { ids: requeue.map((s) => s.id), reason });
      }
      // The jobs of steps released anew stay in the ledger, unlinked (a step has one job at a time).
      const unlinked = renew.filter((s) => s.job_id !== null).map((s) => s.job_id!);
      if (unlinked.length > 0) await unlinkJobs.run(tx, { ids: unlinked });
      const blocked = [...renew.map((s) => s.id), ...reopened];
      await reblockSteps.run(tx, { ids: blocked });
      await tx.execute(recountDependencies(runId));
      // RUNNING again, so the steps decided below see a live run.
      await recomputeRunStatuses(tx, [runId]);
      await propagateSteps(tx, { decide: blocked });
      await recomputeRunStatuses(tx, [runId]);

      const retriedKeys = retried.map((s) => s.step_key).sort();
      const reopenedKeys = steps.filter((s) => reopened.has(s.id)).map((s) => s.step_key);
      await insertMutation.run(tx, {
        id: newId(),
        runId,
        mutationKey,
        metadata,
        request: JSON.stringify({
          ...request,
          retried_step_keys: retriedKeys,
          reopened_step_keys: reopenedKeys.sort(),
        }),
      });
      const [after] = await readRun.run(tx, { id: runId });
      return {
        workflowRun: runFromRow(after!),
        retriedSteps: await stepsNamed(retriedKeys),
        reopenedSteps: await stepsNamed(reopenedKeys),
        mutationKey,
        outcome: "RETRIED" as const,
      };
    }),
  );
}
