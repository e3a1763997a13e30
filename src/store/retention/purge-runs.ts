import type { SQL } from "drizzle-orm";
import {
  type OrganizationScope,
  TERMINAL_JOB_STATUSES,
  TERMINAL_WORKFLOW_RUN_STATUSES,
  type TerminalWorkflowRunStatus,
} from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows, textArrayLiteral } from "../query.ts";
import { runMembersLocked, runPurgeCandidates, runsPurge, visibleRows } from "../sql/retention.ts";
import {
  addCounts,
  batchTransaction,
  checkBounds,
  checkStatuses,
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
 * only if it could lock, without waiting, the run, its step-release lock, every step and every job,
 * and every job is finished: a run that a retry, cancel, append or completion is touching is
 * skipped and taken by a later pass, never deleted in part. Returns what was deleted;
 * `retention.invalid_input` (nothing deleted) for unusable bounds.
 */
export async function purgeWorkflowRuns(
  executor: Executor,
  input: PurgeWorkflowRunsInput,
): Promise<PurgedWorkflowRuns> {
  const visible = visibleRows(input.scope);
  const statuses = checkStatuses(input.statuses, TERMINAL_WORKFLOW_RUN_STATUSES);
  const { cutoff, limit, batchSize } = checkBounds(input);
  const totals: PurgedWorkflowRuns = { ...noCounts(), runs: 0, steps: 0, edges: 0, mutations: 0 };
  return translating(async () => {
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
  });
}

interface BatchInput {
  status: TerminalWorkflowRunStatus;
  visible: SQL;
  cutoff: SQL;
  batchSize: number;
  limit: number;
  seen: Set<string>;
}

interface BatchResult {
  runs: number;
  steps: number;
  counts: RunsPurgeRow | undefined;
}

type RunsPurgeRow = Awaited<ReturnType<typeof runsPurge.run>>[number];

/** One transaction; undefined when no candidate is left for this status. */
async function purgeBatch(tx: Executor, input: BatchInput): Promise<BatchResult | undefined> {
  const runs = await queryRows<{ id: string; released: boolean }>(
    tx,
    runPurgeCandidates({
      status: input.status,
      cutoff: input.cutoff,
      visible: input.visible,
      seen: [...input.seen],
      limit: Math.min(RUN_CANDIDATES, input.limit),
    }),
  );
  if (runs.length === 0) return undefined;
  for (const run of runs) input.seen.add(run.id);
  // A run whose step-release lock is held (shared, by a completion or release in flight) is left.
  const runIds = runs.filter((r) => r.released).map((r) => r.id);
  if (runIds.length === 0) return { runs: 0, steps: 0, counts: undefined };

  const members = await runMembersLocked.run(tx, { runIds: textArrayLiteral(runIds) });
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

  const [counts] = await runsPurge.run(tx, { jobIds: textArrayLiteral(jobIds), runIds: textArrayLiteral(doomed) });
  return { runs: Number(counts?.runs ?? 0), steps: Number(counts?.steps ?? 0), counts };
}
