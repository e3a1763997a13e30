import { type SQL, sql } from "drizzle-orm";
import type { TerminalJobStatus, TerminalWorkflowRunStatus } from "../../core/index.ts";
import { clockAt, statement } from "../query.ts";
import {
  jobAttemptLog,
  jobDeadLetters,
  jobEventLog,
  jobLogs,
  jobQueue,
  workflowRunMutations,
  workflowRuns,
  workflowStepDependencies,
  workflowSteps,
} from "../schema/index.ts";
import { scopeCondition } from "./scope.ts";
import { stepReleaseLockKeySql } from "./workflows/locks.ts";

/*
 * Retention's statements (src/store/retention/). Why batches, and why through these indexes, is
 * recorded with the purges (purge.ts, batch.ts); the numbers are in the README's Retention section.
 */

/** The rows `scope` sees; `scope.required` (before any statement runs) when it is no scope. */
export function visibleRows(scope: unknown): SQL {
  return scopeCondition(sql`organization_id`, scope);
}

/**
 * The instant a purge deletes what finished before: `olderThan` itself, or `olderThan`
 * milliseconds before `now` (the database's clock when omitted).
 */
export function purgeCutoff(olderThan: Date | number, now: Date | undefined): SQL {
  if (typeof olderThan === "number") return sql`(${clockAt(now)} - ${olderThan}::bigint * interval '1 millisecond')`;
  return sql`${olderThan.toISOString()}::timestamptz`;
}

/** The planner settings a purge batch turns off (see `batchTransaction`), turned off, with what they were. */
export const batchPlannerOff = statement<{ seqscan: string; bitmapscan: string; jit: string }>(
  "runledger_retention_planner_off",
  sql`select current_setting('enable_seqscan') as seqscan, current_setting('enable_bitmapscan') as bitmapscan,
    current_setting('jit') as jit, set_config('enable_seqscan', 'off', true),
    set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)`,
);

/** Put back what `batchPlannerOff` found, inside a caller's transaction. */
export const batchPlannerRestore = statement(
  "runledger_retention_planner_restore",
  sql`select set_config('enable_seqscan', ${sql.placeholder("seqscan")}, true),
    set_config('enable_bitmapscan', ${sql.placeholder("bitmapscan")}, true),
    set_config('jit', ${sql.placeholder("jit")}, true)`,
);

/**
 * The CTEs deleting the ledger of the jobs `ids` names (an expression of type uuid[]): attempts,
 * events, log lines and dead letters. None of these tables has a foreign key to the job (see the
 * schema), so whoever deletes jobs deletes their ledger in the same statement.
 */
const ledgerDeletes = (ids: SQL) => sql`
  attempts as (delete from ${jobAttemptLog} where job_id = any(${ids}) returning 1),
  events as (delete from ${jobEventLog} where job_id = any(${ids}) returning 1),
  logs as (delete from ${jobLogs} where job_id = any(${ids}) returning 1),
  dead as (delete from ${jobDeadLetters} where job_id = any(${ids}) returning 1)`;

const ledgerCounts = sql`(select count(*) from attempts) as attempts, (select count(*) from events) as events,
  (select count(*) from logs) as logs, (select count(*) from dead) as dead_letters`;

/** What one purge statement deleted, table by table (counts as the driver gives them). */
export interface LedgerCountsRow {
  jobs: string | number;
  attempts: string | number;
  events: string | number;
  logs: string | number;
  dead_letters: string | number;
}

/**
 * One batch of `purgeFinished`: lock up to `size` finished standalone jobs of `statuses` that
 * finished before `cutoff`, oldest first (walking idx_job_queue_finished, skipping locked rows),
 * and delete them with their ledger in this one statement. `ids` lists them (comma-separated), for
 * `jobLogsOfJobsDelete`.
 */
export function finishedJobsPurge(input: {
  cutoff: SQL;
  statuses: readonly TerminalJobStatus[];
  visible: SQL;
  size: number;
}): SQL {
  const statusList = sql`array[${sql.join(
    input.statuses.map((s) => sql`${s}`),
    sql`, `,
  )}]::runledger.job_status[]`;
  return sql`with doomed as materialized (
      select id from ${jobQueue}
      where finished_at < ${input.cutoff} and finished_at is not null and workflow_step_id is null
        and status = any(${statusList}) and ${input.visible}
      order by finished_at
      limit ${input.size}
      for update skip locked
    ),
    ${ledgerDeletes(sql`array(select id from doomed)`)},
    jobs as (delete from ${jobQueue} where id = any(array(select id from doomed)) returning 1)
    select array_to_string(array(select id from doomed), ',') as ids, (select count(*) from jobs) as jobs, ${ledgerCounts}`;
}

/**
 * Log lines of `jobIds` (a uuid array literal), counted as deleted: a line inserted for one of them
 * by a transaction that committed after the purge's snapshot but before it locked the job; this
 * statement's fresh snapshot sees it.
 */
export const jobLogsOfJobsDelete = statement<{ n: string | number }>(
  "runledger_retention_job_logs_delete",
  sql`with gone as (delete from ${jobLogs} where job_id = any(${sql.placeholder("jobIds")}::uuid[]) returning 1)
    select count(*) as n from gone`,
);

/**
 * Candidate runs of one batch of `purgeWorkflowRuns`, through idx_workflow_runs_status_created: one
 * status, oldest first, locked without waiting, and whether the run's exclusive step-release lock could
 * be taken in the same statement (a completion or release holding it shared is in flight). A run
 * that finished before the cutoff was created before it too; the few created earlier but finished
 * later are read and left. `seen` (already looked at by this pass) are left out.
 */
export function runPurgeCandidates(input: {
  status: TerminalWorkflowRunStatus;
  cutoff: SQL;
  visible: SQL;
  seen: readonly string[];
  limit: number;
}): SQL {
  return sql`select id, pg_try_advisory_xact_lock(${stepReleaseLockKeySql(sql`id`)}) as released from (
      select id from ${workflowRuns}
      where status = ${input.status} and created_at < ${input.cutoff} and finished_at < ${input.cutoff}
        and ${input.visible}
        ${input.seen.length === 0 ? sql`` : sql`and id <> all(${sql.param(input.seen)}::uuid[])`}
      order by created_at
      limit ${input.limit}
      for update skip locked
    ) candidates`;
}

/** A step or job of a run `runMembersLocked` read, and whether this transaction locked it. */
export interface RunMemberRow {
  kind: "step" | "job";
  id: string;
  workflow_run_id: string;
  status: string | null;
  locked: boolean;
}

/**
 * Every step and every job of the runs `runIds` (a uuid array literal), and which of them this
 * transaction could lock without waiting (steps first, then the jobs linked either way).
 */
export const runMembersLocked = statement<RunMemberRow>(
  "runledger_retention_run_members_locked",
  sql`with steps as materialized (
      select id, workflow_run_id, job_id from ${workflowSteps}
      where workflow_run_id = any(${sql.placeholder("runIds")}::uuid[])
    ),
    locked_steps as materialized (
      select id from ${workflowSteps} where id in (select id from steps) for update skip locked
    ),
    linked as materialized (
      select job_id as id, workflow_run_id from steps where job_id is not null
      union
      select j.id, s.workflow_run_id from ${jobQueue} j join steps s on s.id = j.workflow_step_id
      where j.workflow_step_id = any(array(select id from steps))
    ),
    locked_jobs as materialized (
      select id, status from ${jobQueue} where id in (select id from linked) for update skip locked
    )
    select 'step' as kind, s.id, s.workflow_run_id, null as status, k.id is not null as locked
    from steps s left join locked_steps k on k.id = s.id
    union all
    select 'job', l.id, l.workflow_run_id, k.status::text, k.id is not null
    from linked l left join locked_jobs k on k.id = l.id`,
);

/**
 * Delete the runs `runIds` whole, with the jobs `jobIds` (both uuid array literals) and their
 * ledger. One statement, so the delete triggers (which unlink and cascade by hand) find nothing
 * left; its snapshot is taken with every job locked, so it sees every log line written before.
 */
export const runsPurge = statement<
  LedgerCountsRow & {
    edges: string | number;
    mutations: string | number;
    steps: string | number;
    runs: string | number;
  }
>(
  "runledger_retention_runs_purge",
  sql`with ${ledgerDeletes(sql`${sql.placeholder("jobIds")}::uuid[]`)},
    jobs as (delete from ${jobQueue} where id = any(${sql.placeholder("jobIds")}::uuid[]) returning 1),
    edges as (delete from ${workflowStepDependencies}
      where workflow_run_id = any(${sql.placeholder("runIds")}::uuid[]) returning 1),
    mutations as (delete from ${workflowRunMutations}
      where workflow_run_id = any(${sql.placeholder("runIds")}::uuid[]) returning 1),
    steps as (delete from ${workflowSteps} where workflow_run_id = any(${sql.placeholder("runIds")}::uuid[]) returning 1),
    runs as (delete from ${workflowRuns} where id = any(${sql.placeholder("runIds")}::uuid[]) returning 1)
    select (select count(*) from jobs) as jobs,
      (select count(*) from edges) as edges, (select count(*) from mutations) as mutations,
      (select count(*) from steps) as steps, (select count(*) from runs) as runs, ${ledgerCounts}`,
);
