import { sql } from "drizzle-orm";
import { uuidv7 } from "uuidv7";
import { MAX_WORKFLOW_STEPS, type OrganizationScope, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import {
  jobQueue,
  workflowRunMutations,
  workflowRuns,
  workflowStepDependencies,
  workflowSteps,
} from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { requeueLockedJobs } from "../sql/jobs/cancel.ts";
import { checkIdentifierLength, checkTextSize, fail, isBlank, isStorableText, isUuid, jsonText } from "../validate.ts";
import { runFromRow, stepFromRow, type WorkflowRunRecord, type WorkflowStepRecord } from "./records.ts";
import {
  DEPENDENCY_UNSATISFIED,
  internalState,
  lockRunForRewrite,
  recomputeRunStatuses,
  releaseSteps,
} from "./release.ts";
import { requireReadCommitted, requireVisibleRun } from "./release-lock.ts";

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

/** Keys of the stored request that record the outcome rather than the request. */
const OUTCOME_KEYS = sql`- 'retried_step_keys' - 'reopened_step_keys'`;

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

/*
 * Counters from scratch for every step of a run: pending = prerequisites not finished,
 * unsatisfied = ON_SUCCESS prerequisites that finished without success. Outside a retry these are
 * exactly what the engine's increments keep; a retry un-finishes steps, so it derives them again.
 */
const recountDependencies = (runId: string) => sql`
  update ${workflowSteps} d set
    dependency_count_pending = c.pending,
    dependency_count_unsatisfied = c.unsatisfied
  from (
    select e.dependent_step_id as id,
      count(*) filter (where p.status not in ('SUCCEEDED', 'FAILED', 'CANCELED')) as pending,
      count(*) filter (where e.release_mode = 'ON_SUCCESS' and p.status in ('FAILED', 'CANCELED')) as unsatisfied
    from ${workflowStepDependencies} e
    join ${workflowSteps} p on p.id = e.prerequisite_step_id
    where e.workflow_run_id = ${runId}
    group by e.dependent_step_id
  ) c
  where d.id = c.id and d.workflow_run_id = ${runId}
    and (d.dependency_count_pending, d.dependency_count_unsatisfied) is distinct from (c.pending, c.unsatisfied)`;

/**
 * Which canceled steps a retry reopens: those canceled as dependency-unsatisfied (they never had a
 * job) whose every ON_SUCCESS prerequisite succeeded or gets another chance, the retried steps and
 * the steps reopened before them. Such a step always waits for at least one of those (the one
 * that left it unsatisfied), so none is ready at once.
 */
function reopenedBy(steps: readonly RawRow[], edges: readonly RawRow[], retried: ReadonlySet<string>): Set<string> {
  const status = new Map(steps.map((s) => [s.id as string, s.status as string]));
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
 * Locks follow cancellation's order — the run's jobs, its exclusive release lock, the jobs again,
 * steps, run — so of two concurrent retries one applies and the other finds a live run (or, with
 * the same mutation key, `ALREADY_APPLIED`), and a cancel or completion racing it is ordered
 * before or after it as a whole.
 */
export async function retryWorkflowRun(
  executor: Executor,
  input: RetryWorkflowRunInput,
): Promise<RetryWorkflowRunResult> {
  const visible = scopeCondition(sql`organization_id`, input.scope);
  if (!isUuid(input.workflowRunId)) fail("workflow.run_not_found");
  const request = canonicalRequest(input);
  if (input.mutationKey !== undefined && (isBlank(input.mutationKey) || !isStorableText(input.mutationKey))) {
    invalid("mutationKey");
  }
  checkIdentifierLength(input.mutationKey, "mutationKey");
  const metadata = jsonText(input.mutationMetadata ?? {}, "job.invalid_payload", "mutationMetadata");
  const mutationKey = input.mutationKey ?? `retry:${uuidv7()}`;
  const runId = input.workflowRunId;
  const reason = input.reason ?? DEFAULT_RETRY_REASON;
  try {
    return await executor.transaction(async (tx) => {
      await requireReadCommitted(tx, "workflow.retry_unsupported_isolation");
      await requireVisibleRun(tx, runId, visible);
      const steps = await lockRunForRewrite(tx, runId);
      const [run] = await queryRows<RawRow>(
        tx,
        sql`select * from ${workflowRuns} where id = ${runId} and ${visible} for update`,
      );
      if (run === undefined) throw new RunledgerError("workflow.run_not_found");
      const byKey = new Map(steps.map((s) => [s.step_key as string, s]));
      const stepsNamed = async (keys: readonly string[]) => {
        const ids = keys.map((key) => byKey.get(key)?.id).filter((id) => id !== undefined);
        return ids.length === 0 ? [] : loadSteps(tx, ids);
      };

      const [previous] = await queryRows<{ same: boolean; request: Record<string, string[]> }>(
        tx,
        sql`select (request ${OUTCOME_KEYS}) = ${JSON.stringify(request)}::jsonb as same, request
          from ${workflowRunMutations} where workflow_run_id = ${runId} and mutation_key = ${mutationKey}`,
      );
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
      const failedJobStep = (s: RawRow) => s.status === "FAILED" && s.execution_kind === "JOB";
      let retried: RawRow[];
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

      const edges = await queryRows<RawRow>(
        tx,
        sql`select prerequisite_step_id, dependent_step_id, release_mode from ${workflowStepDependencies}
          where workflow_run_id = ${runId}`,
      );
      const reopened = reopenedBy(steps, edges, new Set(retried.map((s) => s.id)));
      // A retried step that ran after a prerequisite which now runs again (over an ON_TERMINAL
      // edge) must wait for it: it is released anew, with a new job, once that one finishes.
      const again = new Set([...retried.map((s) => s.id as string), ...reopened]);
      const waits = new Set(edges.filter((e) => again.has(e.prerequisite_step_id)).map((e) => e.dependent_step_id));
      const requeue = retried.filter((s) => s.job_id !== null && !waits.has(s.id));
      const renew = retried.filter((s) => !requeue.includes(s));

      if (requeue.length > 0) {
        // The failed jobs' next runs, each with a REQUEUED event that names this retry.
        const jobIds = requeue.map((s) => s.job_id as string);
        const requeued = await requeueLockedJobs(tx, sql`id = any(${sql.param(jobIds)}::uuid[])`, {
          reason,
          keepProgress: !request.reset_checkpoints,
          event: { requeue_kind: "WORKFLOW_RETRY", workflow_run_id: runId, mutation_key: mutationKey },
        });
        if (requeued.length !== requeue.length) {
          throw internalState("a failed step's job is not finished", { workflowRunId: runId });
        }
        await tx.execute(
          sql`update ${workflowSteps} set status = 'ENQUEUED', started_at = null, finished_at = null,
              status_reason = ${reason}, last_error_code = null, last_error_message = null
            where id = any(${sql.param(requeue.map((s) => s.id))}::uuid[])`,
        );
      }
      // The jobs of steps released anew stay in the ledger, unlinked (a step has one job at a time).
      const unlinked = renew.filter((s) => s.job_id !== null).map((s) => s.job_id as string);
      if (unlinked.length > 0) {
        await tx.execute(
          sql`update ${jobQueue} set workflow_step_id = null, updated_at = now() where id = any(${sql.param(unlinked)}::uuid[])`,
        );
      }
      const blocked = [...renew.map((s) => s.id as string), ...reopened];
      await tx.execute(
        sql`update ${workflowSteps} set status = 'BLOCKED', job_id = null, started_at = null, finished_at = null,
            status_reason = null, last_error_code = null, last_error_message = null
          where id = any(${sql.param(blocked)}::uuid[])`,
      );
      await tx.execute(recountDependencies(runId));
      // RUNNING again, so the release below sees a live run.
      await recomputeRunStatuses(tx, [runId]);
      await releaseSteps(tx, runId, blocked, { takeReleaseLock: false });
      await recomputeRunStatuses(tx, [runId]);

      const retriedKeys = retried.map((s) => s.step_key as string).sort();
      const reopenedKeys = steps.filter((s) => reopened.has(s.id)).map((s) => s.step_key as string);
      await tx.execute(
        sql`insert into ${workflowRunMutations} (id, workflow_run_id, mutation_key, metadata, request)
          values (${uuidv7()}, ${runId}, ${mutationKey}, ${metadata}::jsonb, ${JSON.stringify({
            ...request,
            retried_step_keys: retriedKeys,
            reopened_step_keys: reopenedKeys.sort(),
          })}::jsonb)`,
      );
      const [after] = await queryRows<RawRow>(tx, sql`select * from ${workflowRuns} where id = ${runId}`);
      return {
        workflowRun: runFromRow(after!),
        retriedSteps: await stepsNamed(retriedKeys),
        reopenedSteps: await stepsNamed(reopenedKeys),
        mutationKey,
        outcome: "RETRIED" as const,
      };
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

async function loadSteps(tx: Executor, ids: readonly string[]): Promise<WorkflowStepRecord[]> {
  const rows = await queryRows<RawRow>(
    tx,
    sql`select * from ${workflowSteps} where id = any(${sql.param([...ids])}::uuid[]) order by created_at, id`,
  );
  return rows.map(stepFromRow);
}
