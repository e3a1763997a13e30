import { type SQL, sql } from "drizzle-orm";
import { JOBS_CHANNEL, RUN_TERMINAL_CHANNEL } from "../../notify.ts";
import { statement } from "../../query.ts";
import { jobQueue, workflowRuns, workflowStepDependencies, workflowSteps } from "../../schema/index.ts";
import type { WorkflowStepRow } from "./rows.ts";

/*
 * How a step's end reaches its dependents (spec §6.3), in SQL only. Each dependent counts its
 * prerequisites: `dependency_count_pending` not yet finished, `dependency_count_unsatisfied`
 * finished without success over an ON_SUCCESS edge. When its last prerequisite is counted, a
 * BLOCKED step is decided: released (its job enqueued, or its gate opened) when nothing left it
 * unsatisfied and its run is live, else canceled as `workflow.dependency_unsatisfied`, which
 * counts against its own dependents in turn. Two statements apply the rule, built from the
 * fragments below: settle's (settle.ts: a batch of job completions, one level, hot) and
 * `propagate` (every other change, and what settle's cancellations set off, transitively).
 */

export const DEPENDENCY_UNSATISFIED = "workflow.dependency_unsatisfied";
const DEPENDENCY_UNSATISFIED_MESSAGE = "Step dependency requirements were not satisfied.";

/*
 * The two decisions, over `d` (a dependent as the statement found it), `c` (its prerequisites
 * counted now: `finished`, and of those `unsatisfied`) and `r` (its run). Text, not parameters, so
 * a statement that splices them keeps its own plan and its parameter numbers.
 */

/** Released: BLOCKED without a job, its last prerequisites counted now, none unsatisfied, in a live run. */
export const releasable = sql.raw(`d.status = 'BLOCKED' and d.job_id is null
        and d.dependency_count_pending = c.finished and d.dependency_count_unsatisfied + c.unsatisfied = 0
        and r.status in ('RUNNING', 'WAITING_FOR_EXTERNAL')`);

/** Canceled: BLOCKED, its last prerequisites counted now, one of them (or earlier) unsatisfied. */
export const unsatisfiable = sql.raw(
  `d.status = 'BLOCKED' and d.dependency_count_pending = c.finished and d.dependency_count_unsatisfied + c.unsatisfied > 0`,
);

/**
 * What a decision writes on a dependent, from `t` (`finished`, `unsatisfied`, `ready`, `canceled`,
 * `new_job_id`): the counters always; a released step its job (or its open gate) and a clean
 * slate; a canceled one its end.
 */
export const decidedStepAssignments = sql.raw(`dependency_count_pending = d.dependency_count_pending - t.finished,
      dependency_count_unsatisfied = d.dependency_count_unsatisfied + t.unsatisfied,
      status = case when t.canceled then 'CANCELED' when not t.ready then d.status when d.execution_kind = 'JOB' then 'ENQUEUED'
        else 'WAITING_FOR_EXTERNAL' end::runledger.workflow_step_status,
      job_id = case when t.ready and d.execution_kind = 'JOB' then t.new_job_id else d.job_id end,
      released_at = case when t.ready then coalesce(d.released_at, now()) else d.released_at end,
      started_at = case when t.ready and d.execution_kind <> 'JOB' then null else d.started_at end,
      finished_at = case when t.canceled then now() when t.ready then null else d.finished_at end,
      status_reason = case when t.canceled then '${DEPENDENCY_UNSATISFIED}' when t.ready then null
        else d.status_reason end,
      last_error_code = case when t.canceled then '${DEPENDENCY_UNSATISFIED}' when t.ready then null
        else d.last_error_code end,
      last_error_message = case when t.canceled then '${DEPENDENCY_UNSATISFIED_MESSAGE}' when t.ready then null
        else d.last_error_message end`);

/**
 * A job id per released step: one fresh UUIDv7 (`jobBase`) with its last eight hex digits numbering
 * the row (as the claim numbers attempt ids in four; a statement's releases are not bounded).
 */
export const numberedJobId = (n: SQL): SQL =>
  sql`overlay(${sql.placeholder("jobBase")}::text placing lpad(to_hex(${n}), 8, '0') from 29 for 8)::uuid`;

/**
 * The CTE `targets` of both statements that apply the rule: each counted step (`counts`: id,
 * finished, unsatisfied) with the rule's decision (`ready`, `canceled`) and, should it be a
 * released JOB step, its new job's id, numbered by `n`.
 */
export const decidedTargets = (n: SQL): SQL => sql`targets as (
    select c.id, c.finished, c.unsatisfied,
      ${numberedJobId(n)} as new_job_id,
      ${releasable} as ready,
      ${unsatisfiable} as canceled
    from counts c
    join ${workflowSteps} d on d.id = any(array(select id from counts)) and d.id = c.id
    join ${workflowRuns} r on r.id = d.workflow_run_id
  )`;

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

/**
 * The BLOCKED steps among `candidates` (a uuid[] expression) that `counted` (a uuid[] of finished
 * steps, and of steps canceled as unsatisfied, table status BLOCKED) leaves unsatisfiable: the
 * `unsatisfiable` rule with `c` counted over `counted`, as a uuid[].
 */
const unsatisfiableAmong = (candidates: SQL, counted: SQL): SQL => sql`array(
      select d.id from ${workflowSteps} d
      cross join lateral (
        select count(*) as finished,
          count(*) filter (where e.release_mode = 'ON_SUCCESS' and p.status <> 'SUCCEEDED') as unsatisfied
        from ${workflowStepDependencies} e join ${workflowSteps} p on p.id = e.prerequisite_step_id
        where e.dependent_step_id = d.id and e.prerequisite_step_id = any(${counted})
      ) c
      where d.id = any(${candidates}) and d.id <> all(${counted}) and ${unsatisfiable}
    )`;

/*
 * The propagation of every change but a job completion (settle.ts), in one statement however far it
 * reaches. `finished`: steps that have just become terminal (already written, not yet counted
 * against their dependents). `decide`: steps whose counters are already right, to decide now
 * (a run's roots, appended steps, steps a retry reopens). The recursive `cascade` finds, level by
 * level, the steps canceled as unsatisfied: `counted` is what a dependent's counters are measured
 * against (finished steps, then the canceled), `fresh` the last level's cancellations, whose
 * dependents are looked at next. Then one update counts every finished or canceled step against
 * its dependents and applies the decisions, the released JOB steps get their jobs, and workers are
 * woken once. Rows: every step written, its new status, and whether it was released.
 *
 * Before this statement a cascade cost a round trip per canceled step (count its dependents) plus
 * one per level (cancel the unsatisfied); cancelling a run counted each of its steps apart.
 */
export const propagate = statement<Pick<WorkflowStepRow, "id" | "status"> & { released: boolean }>(
  "runledger_workflow_propagate",
  sql`
  with recursive cascade(counted, fresh) as (
    select k.ids || x.ids, x.ids
    from (select ${sql.placeholder("finished")}::uuid[] as ids) k
    cross join lateral (select ${unsatisfiableAmong(
      sql`array(select unnest(${sql.placeholder("decide")}::uuid[])
        union select e.dependent_step_id from ${workflowStepDependencies} e where e.prerequisite_step_id = any(k.ids))`,
      sql`k.ids`,
    )} as ids) x
    union all
    select w.counted || x.ids, x.ids
    from cascade w
    cross join lateral (select ${unsatisfiableAmong(
      sql`array(select e.dependent_step_id from ${workflowStepDependencies} e where e.prerequisite_step_id = any(w.fresh))`,
      sql`w.counted`,
    )} as ids) x
    where cardinality(w.fresh) > 0
  ),
  canceled as (
    select unnest(fresh) as id from cascade
  ),
  finished as (
    select s.id, s.workflow_run_id, s.status from ${workflowSteps} s
    where s.id = any(${sql.placeholder("finished")}::uuid[])
    union all
    select s.id, s.workflow_run_id, 'CANCELED' from ${workflowSteps} s where s.id = any(array(select id from canceled))
  ),
  counts as (
    select e.dependent_step_id as id, count(*) as finished,
      count(*) filter (where e.release_mode = 'ON_SUCCESS' and x.status <> 'SUCCEEDED') as unsatisfied
    from finished x
    join ${workflowStepDependencies} e on e.prerequisite_step_id = x.id and e.workflow_run_id = x.workflow_run_id
    group by e.dependent_step_id
    union all
    select distinct s.id, 0, 0 from unnest(${sql.placeholder("decide")}::uuid[]) as s(id)
    where not exists (
      select 1 from finished x join ${workflowStepDependencies} e on e.prerequisite_step_id = x.id
      where e.dependent_step_id = s.id
    )
  ),
  ${decidedTargets(sql`row_number() over (order by d.created_at, d.id)`)},
  decided as (
    update ${workflowSteps} d set
      ${decidedStepAssignments}
    from targets t
    where d.id = any(array(select id from targets)) and d.id = t.id and (t.finished > 0 or t.ready or t.canceled)
    returning d.id, d.workflow_run_id, d.status, t.ready as released, t.ready and d.execution_kind = 'JOB' as new_job,
      d.job_id, d.job_type, d.organization_id, d.payload, d.priority, d.max_attempts, d.timeout_seconds, d.stage,
      d.concurrency_key
  ),
  ${releasedJobsCtes("job_id", sql`decided where new_job`)}
  select d.id, d.status, d.released from decided d cross join notified`,
);

/**
 * Counters from scratch for a run's steps (all of them, or `stepIds`): pending = prerequisites not
 * finished, unsatisfied = ON_SUCCESS prerequisites that finished without success. Outside a retry
 * these are exactly what propagation keeps; a retry un-finishes steps and an append adds steps
 * whose prerequisites may have finished long ago, so they derive them. Rows that already hold the
 * right counts are not written.
 */
export function recountDependencies(runId: string, stepIds?: readonly string[]): SQL {
  return sql`
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
      ${stepIds === undefined ? sql`` : sql`and e.dependent_step_id = any(${sql.param([...stepIds])}::uuid[])`}
    group by e.dependent_step_id
  ) c
  where d.id = c.id and d.workflow_run_id = ${runId}
    and (d.dependency_count_pending, d.dependency_count_unsatisfied) is distinct from (c.pending, c.unsatisfied)`;
}

/*
 * Derive runs' statuses from their steps (spec §4.4). Called with the run rows locked, in a
 * statement of its own so it sees every step change committed before the locks were granted. A
 * canceled run is never overwritten; an unchanged status writes nothing. Runs that finish are
 * announced on RUN_TERMINAL_CHANNEL by one notification for the statement (ids listed while they
 * fit PostgreSQL's 8,000-byte payload, ~200 runs; else empty, meaning "look again").
 */
export const recomputeRuns = statement<{ updated: number }>(
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
