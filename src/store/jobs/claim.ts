import { checkJobType, checkLabel } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { type ClaimFairness, claimUnderFlowControl, type FlowClaimMemo } from "../flow/claim.ts";
import { type Statement, textArrayLiteral } from "../query.ts";
import { toDate } from "../rows.ts";
import {
  type ClaimRow,
  claim,
  claimOfSize,
  claimRunnable,
  claimRunnableOfSize,
  claimSize,
  flowCheck,
  flowClaim,
  flowClaimRunnable,
  isClaimSize,
  type RunnableRow,
} from "../sql/jobs/claim.ts";
import { fail, isInt32, isValidDate } from "../validate.ts";
import type { LeaseIdentity } from "./lease-identity.ts";
import { type JobRecord, jobFromRow } from "./record.ts";

/*
 * Claims: validation and the choice between the direct and the flow-controlled claim. The
 * statements, and the measurements that shaped them, are in sql/jobs/claim.ts.
 */

export { claimSize };

/** Most jobs one claim may lease. */
export const MAX_CLAIM = 10_000;

/** A claimed job, with the workflow run its step belongs to (if any). */
export interface ClaimedJob extends JobRecord {
  workflowRunId: string | null;
}

export interface ClaimJobsInput {
  workerId: string;
  /** Lease length; the worker must heartbeat or finish before it runs out. */
  leaseSeconds: number;
  /** Most jobs to claim, at most `MAX_CLAIM`. */
  limit: number;
  /** Only these job types; an empty list claims nothing without touching the database. */
  jobTypes?: readonly string[];
  /** Persist the `running` marker in the claim itself (what the runtime worker does). */
  markRunning?: boolean;
  /**
   * Record the attempt as a worker prestart claim: if its lease runs out before `running` is
   * persisted, expired-lease recovery returns the job without counting the attempt.
   */
  prestart?: boolean;
  /**
   * Share the batch across organizations or concurrency keys (round-robin, each in claim order)
   * instead of strict claim order, so one tenant's backlog cannot starve another's few jobs.
   */
  fairness?: ClaimFairness;
  /**
   * A claimer's memo of whether flow control is configured, which the claim keeps up to date: a
   * worker passes the same object each time, so under flow control it skips the direct claim.
   */
  flowMemo?: FlowClaimMemo;
  /**
   * Claim as of this time instead of the database's now (tests, replays): the due check, and under
   * flow control the rate windows (starts counted and recorded), read it. The lease is written at
   * the database's clock.
   */
  now?: Date;
}

/**
 * Lease up to `limit` due jobs, highest priority first, then oldest `next_run_at`, then oldest.
 * Concurrent claimers never receive the same job. Definitions' enabled flags are not checked:
 * disabling a type stops new enqueues, not queued work.
 */
export async function claimJobs(executor: Executor, input: ClaimJobsInput): Promise<ClaimedJob[]> {
  const rows = await runClaim(sizedIfClaimSize(input.limit, claim, claimOfSize), flowClaim, executor, input);
  // UPDATE … RETURNING does not keep the candidates' order; restore the claim order.
  return rows.map(claimedFromRow).sort(claimOrder);
}

/** What a worker needs to run a claimed job; it is its own lease (`jobId` is `id`). */
export interface RunnableJob extends LeaseIdentity {
  id: string;
  jobType: string;
  organizationId: string | null;
  payload: unknown;
  maxAttempts: number;
  timeoutSeconds: number;
  /** The checkpoint a previous attempt of this run stored, or null. */
  checkpoint: unknown;
  workflowStepId: string | null;
  workflowRunId: string | null;
  /** The step's key in its workflow, for step jobs. */
  workflowStepKey: string | null;
  /** Which schedule slot fired this job; null for jobs not enqueued by a schedule. */
  schedule: JobScheduleProvenance | null;
  /** The W3C trace context of the enqueue (traceparent, then tracestate after a newline), if traced. */
  traceContext: string | null;
}

/** The schedule and slot a scheduled job was fired for. */
export interface JobScheduleProvenance {
  id: string;
  /** The schedule's name; null if the schedule has been deleted since. */
  name: string | null;
  /** The slot's cron time (before jitter), which a catch-up or backfill fires long after. */
  scheduledFor: Date;
}

/**
 * `claimJobs` for workers: the same claim, returning only what running a job needs (in claim
 * order), which is much cheaper to receive than full records.
 */
export async function claimRunnableJobs(executor: Executor, input: ClaimJobsInput): Promise<RunnableJob[]> {
  const direct = sizedIfClaimSize(input.limit, claimRunnable, claimRunnableOfSize);
  const rows = await runClaim(direct, flowClaimRunnable, executor, input);
  const workerId = input.workerId;
  return rows.map((row) => runnableFromRow(row, workerId));
}

/** A worker's claimed job: its own lease, so `workerId` is the claimer's. */
function runnableFromRow(row: RunnableRow, workerId: string): RunnableJob {
  return {
    id: row.id,
    jobId: row.id,
    jobType: row.job_type,
    organizationId: row.organization_id,
    payload: row.payload,
    runNumber: row.run_number,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    timeoutSeconds: row.timeout_seconds,
    checkpoint: row.checkpoint,
    workerId,
    workflowStepId: row.workflow_step_id,
    workflowRunId: row.workflow_run_id,
    workflowStepKey: row.step_key ?? null,
    schedule:
      row.schedule_id === null
        ? null
        : { id: row.schedule_id, name: row.schedule_name, scheduledFor: toDate(row.scheduled_for) },
    traceContext: row.trace_context,
  };
}

/**
 * The direct claim first, unless the claimer asks for fairness or its memo says flow control is
 * configured. The direct claim leases nothing under flow control, so an empty result asks
 * whether flow control is configured, and if so claims under it (which refreshes the memo too).
 * Without flow control a claim is the direct statement alone; an idle poll costs one small
 * statement more.
 */
async function runClaim<Row extends Record<string, unknown>>(
  direct: Statement<Row>,
  flow: Statement<Row>,
  executor: Executor,
  input: ClaimJobsInput,
): Promise<Row[]> {
  checkLabel(input.workerId, "workerId", "job.invalid_worker_id");
  if (input.jobTypes !== undefined) for (const jobType of input.jobTypes) checkJobType(jobType);
  if (!isInt32(input.leaseSeconds) || input.leaseSeconds <= 0) fail("job.invalid_lease_duration");
  if (!isInt32(input.limit) || input.limit < 0 || input.limit > MAX_CLAIM) {
    fail("job.invalid_pagination", { field: "limit" });
  }
  if (input.fairness !== undefined && input.fairness !== "organization" && input.fairness !== "concurrencyKey") {
    fail("job.invalid_claim_fairness");
  }
  if (input.now !== undefined && !isValidDate(input.now)) fail("job.invalid_pagination", { field: "now" });
  if (input.limit === 0 || input.jobTypes?.length === 0) return [];
  const values = {
    jobTypes: input.jobTypes === undefined ? null : textArrayLiteral(input.jobTypes),
    limit: input.limit,
    workerId: input.workerId,
    leaseSeconds: input.leaseSeconds,
    markRunning: input.markRunning === true,
    prestart: input.prestart === true,
    now: input.now,
  };
  return translating(async () => {
    if (input.fairness === undefined && input.flowMemo?.active !== true) {
      const rows = await direct.run(executor, values);
      if (rows.length > 0) return rows;
      const [check] = await flowCheck.run(executor, {});
      if (input.flowMemo !== undefined) input.flowMemo.active = check?.active === true;
      if (check?.active !== true) return rows;
    }
    return claimUnderFlowControl(executor, { ...values, fairness: input.fairness }, flow, input.flowMemo);
  });
}

/** The statement with `limit` written in when it is a claim size (see `claimSize`), else `statement`. */
function sizedIfClaimSize<Row>(
  limit: number,
  statement: Statement<Row>,
  ofSize: (size: number) => Statement<Row>,
): Statement<Row> {
  return limit <= MAX_CLAIM && isClaimSize(limit) ? ofSize(limit) : statement;
}

/** A `ClaimedJob`: the job's record and its step's run. */
function claimedFromRow(row: ClaimRow): ClaimedJob {
  return Object.assign(jobFromRow(row), { workflowRunId: row.workflow_run_id ?? null });
}

function claimOrder(a: JobRecord, b: JobRecord): number {
  return (
    b.priority - a.priority ||
    a.nextRunAt.getTime() - b.nextRunAt.getTime() ||
    a.createdAt.getTime() - b.createdAt.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}
