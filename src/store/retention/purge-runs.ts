import { sql } from "drizzle-orm";
import {
  type OrganizationScope,
  TERMINAL_JOB_STATUSES,
  TERMINAL_WORKFLOW_RUN_STATUSES,
  type TerminalWorkflowRunStatus,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import {
  jobQueue,
  workflowRunMutations,
  workflowRuns,
  workflowStepDependencies,
  workflowSteps,
} from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { stepReleaseLockKeySql } from "../sql/workflows/locks.ts";
import {
  addCounts,
  batchTransaction,
  checkBounds,
  checkStatuses,
  countsOf,
  ledgerCounts,
  ledgerDeletes,
  noCounts,
  type PurgeBounds,
  type PurgeCounts,
} from "./batch.ts";

export interface PurgeWorkflowRunsInput extends PurgeBounds {
  /** Whose runs: one organization, or `ALL_ORGANIZATIONS`. */
  scope: OrganizationScope;
  /** Which outcomes; default all terminal ones (SUCCEEDED, COMPLETED_WITH_ERRORS, CANCELED). */
  statuses?: readonly TerminalWorkflowRunStatus[];
}

export interface PurgedWorkflowRuns extends PurgeCounts {
  runs: number;
  steps: number;
  edges: number;
  mutations: number;
}

/** Runs looked at per batch; the batch then keeps as many as fit its row budget. */
const RUN_CANDIDATES = 100;
/** Rows a step brings with it (step, job, edges, events, attempts): a batch of 1,000 is ~9 runs of 1→20→1. */
const ROWS_PER_STEP = 5;

const TERMINAL_JOBS = new Set<string>(TERMINAL_JOB_STATUSES);

/**
 * Delete finished workflow runs whole — run, steps, edges, mutations, the steps' jobs and their
 * attempts, events, log lines and dead letters — when the run is terminal (`statuses`) and
 * finished before `olderThan`. A batch (one transaction, about `batchSize` rows) deletes a run
 * only if it could lock, without waiting, the run, its release lock, every step and every job,
 * and every job is finished: a run that a retry, cancel, append or completion is touching is
 * skipped and taken by a later pass, never deleted in part. Returns what was deleted;
 * `retention.invalid_input` (nothing deleted) for unusable bounds.
 */
export async function purgeWorkflowRuns(
  executor: Executor,
  input: PurgeWorkflowRunsInput,
): Promise<PurgedWorkflowRuns> {
  const visible = scopeCondition(sql`organization_id`, input.scope);
  const statuses = checkStatuses(input.statuses, TERMINAL_WORKFLOW_RUN_STATUSES);
  const { cutoff, limit, batchSize } = checkBounds(input);
  const totals: PurgedWorkflowRuns = { ...noCounts(), runs: 0, steps: 0, edges: 0, mutations: 0 };
  try {
    for (const status of statuses) {
      // Skipped runs stay locked by someone else; `seen` keeps a pass from looking at them again.
      const seen = new Set<string>();
      while (totals.runs < limit) {
        const batch = await batchTransaction(executor, (tx) =>
          purgeBatch(tx, { status, visible, cutoff, batchSize, limit: limit - totals.runs, seen }),
        );
        if (batch === undefined) break;
        addCounts(totals, batch.counts);
        totals.runs += batch.runs;
        totals.steps += batch.steps;
        totals.edges += Number(batch.counts?.edges ?? 0);
        totals.mutations += Number(batch.counts?.mutations ?? 0);
        if (batch.runs > 0) totals.batches++;
      }
    }
    return totals;
  } catch (error) {
    throw toQueryError(error);
  }
}

interface BatchInput {
  status: TerminalWorkflowRunStatus;
  visible: ReturnType<typeof scopeCondition>;
  cutoff: ReturnType<typeof sql>;
  batchSize: number;
  limit: number;
  seen: Set<string>;
}

interface BatchResult {
  runs: number;
  steps: number;
  counts: Record<string, unknown> | undefined;
}

/** One transaction; undefined when no candidate is left for this status. */
async function purgeBatch(tx: Executor, input: BatchInput): Promise<BatchResult | undefined> {
  const seen = [...input.seen];
  // Candidates through idx_workflow_runs_status_created: one status, oldest first. A run that
  // finished before the cutoff was created before it too; the few created earlier but finished
  // later are read and left.
  const runs = await queryRows<{ id: string; released: boolean }>(
    tx,
    sql`select id, pg_try_advisory_xact_lock(${stepReleaseLockKeySql(sql`id`)}) as released from (
        select id from ${workflowRuns}
        where status = ${input.status} and created_at < ${input.cutoff} and finished_at < ${input.cutoff}
          and ${input.visible}
          ${seen.length === 0 ? sql`` : sql`and id <> all(${sql.param(seen)}::uuid[])`}
        order by created_at
        limit ${Math.min(RUN_CANDIDATES, input.limit)}
        for update skip locked
      ) candidates`,
  );
  if (runs.length === 0) return undefined;
  for (const run of runs) input.seen.add(run.id);
  // The run's exclusive release lock, tried in the same statement: a completion or release
  // holding it shared is in flight.
  const runIds = runs.filter((r) => r.released).map((r) => r.id);
  if (runIds.length === 0) return { runs: 0, steps: 0, counts: undefined };

  // Every step and every job of each run, and which of them this transaction could lock (one
  // statement: steps first, then the jobs linked either way).
  const members = await queryRows<{
    kind: "step" | "job";
    id: string;
    workflow_run_id: string;
    status: string | null;
    locked: boolean;
  }>(
    tx,
    sql`with steps as materialized (
        select id, workflow_run_id, job_id from ${workflowSteps}
        where workflow_run_id = any(${sql.param(runIds)}::uuid[])
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
  const steps = members.filter((m) => m.kind === "step");
  const jobs = members.filter((m) => m.kind === "job");

  // A run goes only if nothing of it is held elsewhere and every job finished; then by budget.
  const blocked = new Set<string>();
  for (const s of steps) if (!s.locked) blocked.add(s.workflow_run_id);
  for (const j of jobs) if (!j.locked || !TERMINAL_JOBS.has(j.status ?? "")) blocked.add(j.workflow_run_id);
  const stepCount = new Map<string, number>();
  for (const s of steps) stepCount.set(s.workflow_run_id, (stepCount.get(s.workflow_run_id) ?? 0) + 1);
  const budget = Math.max(1, Math.floor(input.batchSize / ROWS_PER_STEP));
  const doomed: string[] = [];
  let used = 0;
  for (const id of runIds) {
    if (blocked.has(id)) continue;
    const cost = stepCount.get(id) ?? 0;
    if (doomed.length > 0 && used + cost > budget) {
      input.seen.delete(id); // not deleted for lack of room: the next batch takes it
      continue;
    }
    doomed.push(id);
    used += cost;
  }
  if (doomed.length === 0) return { runs: 0, steps: 0, counts: undefined };
  const doomedSet = new Set(doomed);
  const jobIds = jobs.filter((j) => doomedSet.has(j.workflow_run_id)).map((j) => j.id);

  // One statement, so the delete triggers (which unlink and cascade by hand) find nothing left.
  // Its snapshot is taken with every job locked: it sees every log line written before.
  const counts = await countsOf(
    tx,
    sql`with ${ledgerDeletes(sql`${sql.param(jobIds)}::uuid[]`)},
      jobs as (delete from ${jobQueue} where id = any(${sql.param(jobIds)}::uuid[]) returning 1),
      edges as (delete from ${workflowStepDependencies} where workflow_run_id = any(${sql.param(doomed)}::uuid[]) returning 1),
      mutations as (delete from ${workflowRunMutations} where workflow_run_id = any(${sql.param(doomed)}::uuid[]) returning 1),
      steps as (delete from ${workflowSteps} where workflow_run_id = any(${sql.param(doomed)}::uuid[]) returning 1),
      runs as (delete from ${workflowRuns} where id = any(${sql.param(doomed)}::uuid[]) returning 1)
      select (select count(*) from jobs) as jobs,
        (select count(*) from edges) as edges, (select count(*) from mutations) as mutations,
        (select count(*) from steps) as steps, (select count(*) from runs) as runs, ${ledgerCounts}`,
  );
  return { runs: Number(counts?.runs ?? 0), steps: Number(counts?.steps ?? 0), counts };
}
