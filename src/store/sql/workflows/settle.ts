import { sql } from "drizzle-orm";
import { columnParams, statement } from "../../query.ts";
import { workflowRuns, workflowStepDependencies, workflowSteps } from "../../schema/index.ts";
import { decidedStepAssignments, decidedTargets, releasedJobsCtes } from "./propagate.ts";
import type { WorkflowStepRow } from "./rows.ts";

/*
 * Settling runs once per finished workflow step, so it is a few prepared statements per batch,
 * not per step or per run: lock the steps (and check the isolation level), take every run's
 * shared step-release lock and run row, then one statement marks all the steps, counts them
 * against their dependents and decides those whose last prerequisite they were, and one more
 * re-derives the runs' statuses. A worker's batch of step completions settles in one
 * transaction this way.
 *
 * Measured on 100 runs of a 1→20→1 fan-out (one worker, concurrency 50, claim batch 100): eleven
 * ad-hoc statements and a commit per step settled 140 steps/s, because siblings queue on their
 * run's row lock and each holder pays its commit; prepared statements alone gave 187/s, four
 * concurrent step transactions 268/s. Then, with the bench's worker (concurrency 20, claim batch
 * 500, 100 runs enqueued one by one), a completion batch held ~240 steps of ~27 runs and settled
 * them with four statements per run (lock, settle, release, status): ~100 round trips in one
 * transaction while the next batch waited. Batched over runs: 1,365–1,804 → 2,730–3,157 steps/s
 * (tsx replica, A/B interleaved), backend CPU ~480–760 → ~340–360 ms, Node CPU ~650–840 →
 * ~340–430 ms per 2,200 steps.
 */
export const lockSettledSteps = statement<
  Pick<WorkflowStepRow, "id" | "workflow_run_id" | "status" | "job_id"> & { read_committed: boolean }
>(
  "runledger_settle_lock_steps",
  sql`
  select id, workflow_run_id, status, job_id,
    current_setting('transaction_isolation') in ('read committed', 'read uncommitted') as read_committed
  from ${workflowSteps} where id = any(${sql.placeholder("stepIds")}::uuid[])
  order by id
  for update`,
);

// The run row is locked only once the step-release lock is held: the order cancellation relies on.
export const tryLockSettlingRun = statement<{ locked: boolean }>(
  "runledger_settle_try_lock_run",
  sql`
  with release_lock as (
    select pg_try_advisory_xact_lock_shared(${sql.placeholder("key")}::bigint) as ok
  ),
  run as (
    select r.id from ${workflowRuns} r join release_lock l on l.ok
    where r.id = ${sql.placeholder("runId")}::uuid
    for no key update of r
  )
  select l.ok as locked, (select count(*) from run) as runs from release_lock l`,
);

/*
 * All runs of a batch at once, when no cancellation holds any of their step-release locks: try
 * every run's lock shared (never waits), and only if all were granted lock the run rows in id
 * order. Otherwise nothing is row-locked and the runs are locked one by one as before.
 */
export const tryLockSettlingRuns = statement<{ id: string }>(
  "runledger_settle_try_lock_runs",
  sql`
  with release_locks as materialized (
    select bool_and(pg_try_advisory_xact_lock_shared(key)) as ok
    from unnest(${sql.placeholder("keys")}::bigint[]) as key
  )
  select r.id from ${workflowRuns} r, release_locks l
  where l.ok and r.id = any(${sql.placeholder("runIds")}::uuid[])
  order by r.id
  for no key update of r`,
);

/*
 * One statement for every run of the batch: mark the settled steps, count them against their
 * dependents (pending − finished prerequisites, unsatisfied + those over an ON_SUCCESS edge that
 * did not succeed) and, in the same update, decide the dependents whose last prerequisite they
 * were (propagate.ts's rules): release those that became ready in a live run (the job from the
 * step's frozen settings, an ENQUEUED event, a wake-up), cancel those that can no longer be
 * satisfied. Rows: every counted dependent, and whether it was canceled (the caller propagates
 * those further, which is rare: only after a failure over an ON_SUCCESS edge).
 * The \`= any(array(…))\` keys keep the updates on primary-key lookups; joined to the JSON input,
 * the planner chose hash joins over the whole steps table.
 *
 * The input is one array per column (`columnParams`), as job batches: decoding a batch of 240
 * settled steps took ~3.5–3.8 ms from one jsonb document and ~0.7–0.8 ms from arrays (the decode
 * alone, 1,900 of each interleaved, on the shared 2-core machine).
 */
/** A settled step as `settleAndDecide` reads it. */
export interface SettledStep {
  stepId: string;
  status: "SUCCEEDED" | "FAILED" | "CANCELED";
  reason: string;
  errorCode: string | null;
  errorMessage: string | null;
}

/** `settleAndDecide`'s input parameters. */
export const settledParams = (steps: readonly SettledStep[]) =>
  columnParams(steps, {
    stepIds: "stepId",
    statuses: "status",
    reasons: "reason",
    errorCodes: "errorCode",
    errorMessages: "errorMessage",
  });

export const settleAndDecide = statement<Pick<WorkflowStepRow, "id"> & { canceled: boolean }>(
  "runledger_settle_and_release_steps",
  sql`
  with input as (
    select * from unnest(${sql.placeholder("stepIds")}::uuid[], ${sql.placeholder("statuses")}::text[],
      ${sql.placeholder("reasons")}::text[], ${sql.placeholder("errorCodes")}::text[],
      ${sql.placeholder("errorMessages")}::text[]) as t(step_id, status, reason, error_code, error_message)
  ),
  settled as (
    update ${workflowSteps} s set
      status = i.status::runledger.workflow_step_status,
      finished_at = now(),
      status_reason = i.reason,
      last_error_code = i.error_code,
      last_error_message = i.error_message
    from input i
    where s.id = any(array(select step_id from input)) and s.id = i.step_id
    returning s.id, s.workflow_run_id, i.status
  ),
  counts as (
    select e.dependent_step_id as id, count(*) as finished,
      count(*) filter (where e.release_mode = 'ON_SUCCESS' and x.status <> 'SUCCEEDED') as unsatisfied,
      row_number() over (order by e.dependent_step_id) as n
    from settled x
    join ${workflowStepDependencies} e on e.prerequisite_step_id = x.id and e.workflow_run_id = x.workflow_run_id
    group by e.dependent_step_id
  ),
  ${decidedTargets(sql`c.n`)},
  counted as (
    update ${workflowSteps} d set
      ${decidedStepAssignments}
    from targets t
    where d.id = any(array(select id from targets)) and d.id = t.id
    returning d.id, d.workflow_run_id, t.canceled, t.ready and d.execution_kind = 'JOB' as new_job,
      d.job_id, d.job_type, d.organization_id, d.payload, d.priority, d.max_attempts, d.timeout_seconds, d.stage,
      d.concurrency_key
  ),
  ${releasedJobsCtes("job_id", sql`counted where new_job`)}
  select c.id, c.canceled from counted c cross join notified`,
);
