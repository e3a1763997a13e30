import { type SQL, sql } from "drizzle-orm";
import { uuidv7 } from "uuidv7";
import { RunledgerError, type WorkflowRunStatus, type WorkflowStepStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { JOBS_CHANNEL, RUN_TERMINAL_CHANNEL } from "../notify.ts";
import { queryRows, statement } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { jobQueue, workflowRuns, workflowStepDependencies, workflowSteps } from "../schema/index.ts";
import { exclusiveReleaseLock, tryShareReleaseLock } from "./release-lock.ts";

export const DEPENDENCY_UNSATISFIED = "workflow.dependency_unsatisfied";
const DEPENDENCY_UNSATISFIED_MESSAGE = "Step dependency requirements were not satisfied.";

/** Lock a run row for the rest of the transaction; returns its status, or undefined when absent. */
export async function lockRun(tx: Executor, runId: string): Promise<WorkflowRunStatus | undefined> {
  const [row] = await queryRows<{ status: WorkflowRunStatus }>(
    tx,
    sql`select status from ${workflowRuns} where id = ${runId} for no key update`,
  );
  return row?.status;
}

/** Lock the job rows of a run's steps, in job id order. */
async function lockRunJobs(tx: Executor, runId: string): Promise<void> {
  await tx.execute(sql`
    select j.id from ${jobQueue} j join ${workflowSteps} s on s.job_id = j.id
    where s.workflow_run_id = ${runId} order by j.id for update of j`);
}

/**
 * The locks of an operation that rewrites a whole run (cancellation, retry), in the engine's order
 * (spec §6.8): the job rows of its steps in job id order, so it queues behind an in-flight
 * completion instead of deadlocking with it; the run's exclusive release lock; the job rows again
 * (jobs released while it waited); the step rows in id order. Returns the steps; the caller locks
 * the run row next.
 */
export async function lockRunForRewrite(tx: Executor, runId: string): Promise<RawRow[]> {
  await lockRunJobs(tx, runId);
  await exclusiveReleaseLock(tx, runId);
  await lockRunJobs(tx, runId);
  return queryRows<RawRow>(
    tx,
    sql`select * from ${workflowSteps} where workflow_run_id = ${runId} order by id for update`,
  );
}

/**
 * The CTEs `jobs` and `notified` of every statement that releases JOB steps: insert each released
 * step's job from the step's frozen settings (`jobId` names the column holding the new job's id,
 * `from` the released steps; the ENQUEUED event is derived from the row), and one wake-up when any job was
 * inserted. The SQL is spliced in as text, so each statement keeps its own plan. Each job carries
 * its run's trace context (`traceContext`, by default read from the run by primary key).
 */
export const releasedJobsCtes = (
  jobId: "job_id" | "new_job_id",
  from: SQL,
  traceContext: SQL = sql`(select wr.trace_context from ${workflowRuns} wr where wr.id = workflow_run_id)`,
) => sql`jobs as (
    insert into ${jobQueue} (id, job_type, organization_id, payload, priority, max_attempts, timeout_seconds,
      next_run_at, stage, workflow_step_id, enqueue_event_id, enqueue_stage, trace_context, concurrency_key)
    select ${sql.raw(jobId)}, job_type, organization_id, payload, priority, max_attempts, timeout_seconds, now(), stage, id,
      nextval('runledger.job_events_id_seq'), stage, ${traceContext}, concurrency_key
    from ${from}
    returning id
  ),
  notified as (
    select count(pg_notify(${JOBS_CHANNEL}, '')) as n from (select 1 from jobs limit 1) j
  )`;

/*
 * Release ready steps (BLOCKED, no job, nothing pending or unsatisfied) of one run in one
 * statement: JOB steps get their job inserted from the step's frozen settings plus an ENQUEUED
 * event and a wake-up notification; EXTERNAL steps open as WAITING_FOR_EXTERNAL. Steps of a run
 * that is no longer live stay BLOCKED.
 */
const releaseReady = statement<{ id: string }>(
  "runledger_release_workflow_steps",
  sql`
  with ready as (
    select s.*, (${sql.placeholder("jobIds")}::uuid[])[row_number() over (order by s.created_at, s.id)] as new_job_id
    from ${workflowSteps} s
    join ${workflowRuns} r on r.id = s.workflow_run_id and r.status in ('RUNNING', 'WAITING_FOR_EXTERNAL')
    where s.workflow_run_id = ${sql.placeholder("runId")}::uuid
      and s.id = any(${sql.placeholder("stepIds")}::uuid[])
      and s.status = 'BLOCKED' and s.job_id is null
      and s.dependency_count_pending = 0 and s.dependency_count_unsatisfied = 0
  ),
  ${releasedJobsCtes("new_job_id", sql`ready where execution_kind = 'JOB'`)},
  released as (
    update ${workflowSteps} s set
      status = case when r.execution_kind = 'JOB' then 'ENQUEUED' else 'WAITING_FOR_EXTERNAL' end::runledger.workflow_step_status,
      job_id = case when r.execution_kind = 'JOB' then r.new_job_id end,
      released_at = coalesce(s.released_at, now()),
      started_at = case when r.execution_kind = 'JOB' then s.started_at end,
      finished_at = null,
      status_reason = null,
      last_error_code = null,
      last_error_message = null
    from ready r
    where s.id = r.id
    returning s.id
  )
  select r.id from released r cross join notified
`,
);

/**
 * Release the given ready steps of a run. Takes the run's shared release lock without waiting:
 * `workflow.release_conflict` while a cancellation holds it. `takeReleaseLock: false` is for
 * callers that hold it already, or whose run is not committed yet.
 */
export async function releaseSteps(
  tx: Executor,
  runId: string,
  stepIds: readonly string[],
  options: { takeReleaseLock?: boolean } = {},
): Promise<void> {
  if (stepIds.length === 0) return;
  if (options.takeReleaseLock !== false) await tryShareReleaseLock(tx, runId);
  await releaseReady.run(tx, {
    runId,
    stepIds: [...stepIds],
    jobIds: stepIds.map(() => uuidv7()),
  });
}

/*
 * Count one finished prerequisite against every dependent of a step: pending − 1, and
 * unsatisfied + 1 over an ON_SUCCESS edge when the prerequisite did not succeed. The row locks
 * taken by the update serialize concurrent prerequisites, so exactly one of them sees a
 * dependent reach zero.
 */
const countFinished = statement<CountedDependent>(
  "runledger_workflow_count_finished_prerequisite",
  sql`
  update ${workflowSteps} d set
    dependency_count_pending = d.dependency_count_pending - 1,
    dependency_count_unsatisfied = d.dependency_count_unsatisfied
      + case when e.release_mode = 'ON_SUCCESS' and ${sql.placeholder("status")}::text <> 'SUCCEEDED' then 1 else 0 end
  from ${workflowStepDependencies} e
  where e.workflow_run_id = ${sql.placeholder("runId")}::uuid
    and e.prerequisite_step_id = ${sql.placeholder("stepId")}::uuid
    and d.id = e.dependent_step_id
  returning d.id, d.status, d.dependency_count_pending as pending, d.dependency_count_unsatisfied as unsatisfied
`,
);

const cancelUnsatisfied = statement<{ id: string }>(
  "runledger_workflow_cancel_unsatisfied",
  sql`
  update ${workflowSteps} set
    status = 'CANCELED',
    status_reason = ${DEPENDENCY_UNSATISFIED},
    last_error_code = ${DEPENDENCY_UNSATISFIED},
    last_error_message = ${DEPENDENCY_UNSATISFIED_MESSAGE},
    finished_at = now()
  where id = any(${sql.placeholder("stepIds")}::uuid[]) and status = 'BLOCKED'
  returning id
`,
);

/** Cancel BLOCKED steps whose dependencies can no longer be satisfied; returns those canceled. */
export async function cancelUnsatisfiedSteps(tx: Executor, stepIds: readonly string[]): Promise<string[]> {
  if (stepIds.length === 0) return [];
  return (await cancelUnsatisfied.run(tx, { stepIds: [...stepIds] })).map((row) => row.id);
}

/** A dependent whose counters a finished prerequisite just moved. */
export interface CountedDependent {
  id: string;
  status: WorkflowStepStatus;
  pending: number;
  unsatisfied: number;
}

/**
 * Act on dependents whose counters just moved: release those whose last prerequisite finished
 * and whose requirements hold, cancel those that can no longer be satisfied. Returns the ids
 * canceled, which propagate in turn.
 */
export async function decideDependents(
  tx: Executor,
  runId: string,
  dependents: readonly CountedDependent[],
  options: { takeReleaseLock?: boolean } = {},
): Promise<string[]> {
  const decided = dependents.filter((d) => d.status === "BLOCKED" && Number(d.pending) === 0);
  const ready = decided.filter((d) => Number(d.unsatisfied) === 0).map((d) => d.id);
  const unsatisfied = decided.filter((d) => Number(d.unsatisfied) > 0).map((d) => d.id);
  await releaseSteps(tx, runId, ready, options);
  return cancelUnsatisfiedSteps(tx, unsatisfied);
}

/**
 * Propagate terminal steps through the DAG (spec §6.3), breadth first: dependents whose last
 * prerequisite finished are released when satisfied, or canceled as
 * `workflow.dependency_unsatisfied` and propagated in turn.
 */
export async function propagateTerminal(
  tx: Executor,
  runId: string,
  finished: readonly { stepId: string; status: WorkflowStepStatus }[],
  options: { takeReleaseLock?: boolean } = {},
): Promise<void> {
  const queue = [...finished];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const dependents = await countFinished.run(tx, { runId, stepId: next.stepId, status: next.status });
    for (const stepId of await decideDependents(tx, runId, dependents, options)) {
      queue.push({ stepId, status: "CANCELED" });
    }
  }
}

/*
 * Derive runs' statuses from their steps (spec §4.4). Called with the run rows locked, in a
 * statement of its own so it sees every step change committed before the locks were granted. A
 * canceled run is never overwritten; an unchanged status writes nothing. Runs that finish are
 * announced on RUN_TERMINAL_CHANNEL by one notification for the statement (ids listed while they
 * fit PostgreSQL's 8,000-byte payload, ~200 runs; else empty, meaning "look again").
 */
const recompute = statement<{ updated: number }>(
  "runledger_workflow_recompute_runs",
  sql`
  with derived as (
    select workflow_run_id as id, case
      when bool_or(status in ('BLOCKED', 'ENQUEUED', 'RUNNING')) then 'RUNNING'
      when bool_or(status = 'WAITING_FOR_EXTERNAL') then 'WAITING_FOR_EXTERNAL'
      when bool_or(status in ('FAILED', 'CANCELED')) then 'COMPLETED_WITH_ERRORS'
      else 'SUCCEEDED'
    end::runledger.workflow_run_status as status
    from ${workflowSteps} where workflow_run_id = any(${sql.placeholder("runIds")}::uuid[])
    group by workflow_run_id
  ),
  updated as (
    update ${workflowRuns} r set
      status = d.status,
      finished_at = case when d.status in ('SUCCEEDED', 'COMPLETED_WITH_ERRORS') then coalesce(r.finished_at, now()) end
    from derived d
    where r.id = any(${sql.placeholder("runIds")}::uuid[]) and r.id = d.id and r.status <> 'CANCELED'
      and r.status <> d.status
    returning r.id, r.status
  ),
  finished as (
    select string_agg(id::text, ',') as ids from updated where status in ('SUCCEEDED', 'COMPLETED_WITH_ERRORS')
  ),
  notified as (
    select count(pg_notify(${RUN_TERMINAL_CHANNEL}, case when length(ids) <= 7900 then ids else '' end)) as n
    from finished where ids is not null
  )
  select (select count(*) from updated) as updated, (select n from notified) as notified
`,
);

export async function recomputeRunStatus(tx: Executor, runId: string): Promise<void> {
  await recomputeRunStatuses(tx, [runId]);
}

/** `recomputeRunStatus` for many runs, all locked by the caller, in one statement. */
export async function recomputeRunStatuses(tx: Executor, runIds: readonly string[]): Promise<void> {
  if (runIds.length > 0) await recompute.run(tx, { runIds: [...runIds] });
}

export function internalState(detail: string, details: Record<string, unknown> = {}): RunledgerError {
  return new RunledgerError("workflow.internal_state", { details, internal: detail });
}
