import { type SQL, sql } from "drizzle-orm";
import { uuidv7 } from "uuidv7";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { type Statement, statement } from "../query.ts";
import { jobAttempts, jobEvents, jobQueue, workflowSteps } from "../schema/index.ts";
import { fail, isBlank, isInt32 } from "../validate.ts";
import { type JobRecord, jobFromRow, type RawRow } from "./record.ts";

/*
 * The claim is the hot path, so it is one prepared statement and one round trip: pick due
 * PENDING rows in priority order with FOR UPDATE SKIP LOCKED, lease them, and write their
 * attempt rows, LEASED events and workflow step transitions in the same statement.
 *
 * Numbers that chose this shape (toolchain notes, this machine): a prepared claim(1) costs
 * ~0.58 ms against ~1.37 ms for the same claim built per call with the query builder, and an
 * unprepared `db.execute` ~0.86 ms. Peers: batched claim plus batched completion is what takes
 * graphile-worker from ~2,200 to ~20,000 jobs/s here; either alone gains little.
 *
 * Where a 500-job claim's server time goes (auto_explain, 50,000 queued jobs, after ANALYZE):
 * 31 ms at first, of which 11 ms were the foreign-key triggers of the attempt and event inserts
 * (dropped: see the schema) and ~2.5 ms a sort pairing rows with attempt ids (gone: the ids are
 * numbered from one UUIDv7); now ~20 ms: the job update with its index entries ~11, the LEASED
 * events ~4, the attempts ~3. The batched success is ~12 ms (job update ~7, HOT attempt update
 * ~2, SUCCEEDED events ~3). That ledger, two job-row versions plus an attempt row and two events
 * per job, is what separates us from graphile-worker's one update and one delete; see README
 * "Performance" for the measured throughput.
 *
 * `markRunning` folds the worker's "running" marker into the claim (stage `running`, execution
 * start persisted), saving a round trip per batch: the worker starts every job it claims at once,
 * since it never claims more than its free capacity. Without it the attempt is a prestart claim
 * that the reaper refunds if the worker dies before persisting `running` (spec §5.7).
 */
function claimStatement<Row>(name: string, result: SQL) {
  return statement<Row>(
    name,
    sql`
  with candidates as (
    select id from ${jobQueue}
    where status = 'PENDING'
      and next_run_at <= now()
      and (${sql.placeholder("jobTypes")}::text[] is null or job_type = any(${sql.placeholder("jobTypes")}::text[]))
    order by priority desc nulls last, next_run_at, created_at, id
    limit ${sql.placeholder("limit")}
    for update skip locked
  ),
  leased as (
    update ${jobQueue} j set
      status = 'LEASED',
      attempt = j.attempt + 1,
      worker_id = ${sql.placeholder("workerId")},
      lease_expires_at = now() + make_interval(secs => ${sql.placeholder("leaseSeconds")}::int),
      last_heartbeat_at = now(),
      started_at = coalesce(j.started_at, now()),
      stage = case when ${sql.placeholder("markRunning")}::boolean then 'running' else j.stage end,
      updated_at = now()
    -- An array keeps the update on primary-key lookups; a join lets the planner pick a hash join
    -- over the whole table, whose cost grows with every finished job the ledger keeps.
    where j.id = any(array(select id from candidates))
    -- Every column but the idempotency snapshot, which the driver would parse for nothing.
    returning j.id, j.job_type, j.organization_id, j.payload, j.status, j.priority, j.run_number, j.attempt,
      j.max_attempts, j.timeout_seconds, j.next_run_at, j.lease_expires_at, j.last_heartbeat_at, j.worker_id,
      j.started_at, j.finished_at, j.stage, j.progress_done, j.progress_total, j.progress_pct, j.checkpoint,
      j.idempotency_key, j.status_reason, j.last_error_code, j.last_error_message, j.workflow_step_id,
      j.created_at, j.updated_at
  ),
  numbered as (
    -- Numbers the rows for their attempt ids; any order will do, so no sort.
    select l.*, row_number() over () as n from leased l
  ),
  attempts as (
    insert into ${jobAttempts} (id, job_id, run_number, attempt, worker_id, leased_at, started_at, claim_origin,
      execution_started_persisted_at)
    -- Attempt n's id is the claim's fresh UUIDv7 with its last four hex digits set to n: still a
    -- v7 id in time order, unique within the claim, and 58 random bits apart across claims.
    -- Sending one generated id per possible row instead cost 2.3 ms per 500-row claim, even an
    -- empty one, which is most of an idle worker's pickup latency.
    select overlay(${sql.placeholder("attemptBase")}::text placing lpad(to_hex(n), 4, '0') from 33 for 4)::uuid,
      id, run_number, attempt, worker_id, now(), now(),
      case when ${sql.placeholder("prestart")}::boolean then 'WORKER_PRESTART' else 'DIRECT' end::runledger.claim_origin,
      case when ${sql.placeholder("markRunning")}::boolean then now() end
    from numbered
  ),
  events as (
    insert into ${jobEvents} (job_id, run_number, attempt, event_type, stage, payload)
    select id, run_number, attempt, 'LEASED', stage,
      jsonb_build_object('worker_id', worker_id, 'lease_duration_seconds', ${sql.placeholder("leaseSeconds")}::int)
    from leased
  ),
  steps as (
    update ${workflowSteps} s set status = 'RUNNING', started_at = coalesce(s.started_at, now())
    from leased l
    -- Only claimed workflow steps: never a scan of the (ever-growing) steps table for plain jobs.
    where l.workflow_step_id is not null and s.id = l.workflow_step_id and s.status in ('ENQUEUED', 'RUNNING')
  )
  ${result}
`,
  );
}

const claim = claimStatement<RawRow>(
  "runledger_claim_jobs",
  sql`select l.*, s.workflow_run_id from leased l left join ${workflowSteps} s on s.id = l.workflow_step_id`,
);

/*
 * The worker's claim returns only what running a job needs, already in claim order: parsing and
 * then collecting the 28 columns of a full record per job was a fifth of a worker's CPU time on
 * no-op jobs (most of it garbage collection).
 */
const claimRunnable = claimStatement<RawRow>(
  "runledger_claim_runnable_jobs",
  sql`select l.id, l.job_type, l.organization_id, l.payload, l.run_number, l.attempt, l.max_attempts,
    l.timeout_seconds, l.worker_id, l.workflow_step_id, s.workflow_run_id
  from leased l left join ${workflowSteps} s on s.id = l.workflow_step_id
  order by l.priority desc nulls last, l.next_run_at, l.created_at, l.id`,
);

/** Most jobs one claim may lease (attempt ids number the rows in four hex digits). */
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
  /** Record the attempt as a worker prestart claim (refunded if `running` is never persisted). */
  prestart?: boolean;
}

/**
 * Lease up to `limit` due jobs, highest priority first, then oldest `next_run_at`, then oldest.
 * Concurrent claimers never receive the same job. Definitions' enabled flags are not checked:
 * disabling a type stops new enqueues, not queued work.
 */
export async function claimJobs(executor: Executor, input: ClaimJobsInput): Promise<ClaimedJob[]> {
  const rows = await runClaim(claim, executor, input);
  // UPDATE … RETURNING does not keep the candidates' order; restore the claim order.
  return rows.map(claimedFromRow).sort(claimOrder);
}

/** What a worker needs to run a claimed job. */
export type RunnableJob = Pick<
  ClaimedJob,
  | "id"
  | "jobType"
  | "organizationId"
  | "payload"
  | "runNumber"
  | "attempt"
  | "maxAttempts"
  | "timeoutSeconds"
  | "workerId"
  | "workflowStepId"
  | "workflowRunId"
>;

/**
 * `claimJobs` for workers: the same claim, returning only what running a job needs (in claim
 * order), which is much cheaper to receive than full records.
 */
export async function claimRunnableJobs(executor: Executor, input: ClaimJobsInput): Promise<RunnableJob[]> {
  const rows = await runClaim(claimRunnable, executor, input);
  return rows.map((row) => ({
    id: row.id,
    jobType: row.job_type,
    organizationId: row.organization_id ?? null,
    payload: row.payload,
    runNumber: Number(row.run_number),
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    timeoutSeconds: Number(row.timeout_seconds),
    workerId: row.worker_id ?? null,
    workflowStepId: row.workflow_step_id ?? null,
    workflowRunId: row.workflow_run_id ?? null,
  }));
}

async function runClaim(query: Statement<RawRow>, executor: Executor, input: ClaimJobsInput): Promise<RawRow[]> {
  if (isBlank(input.workerId)) fail("job.invalid_worker_id");
  if (!isInt32(input.leaseSeconds) || input.leaseSeconds <= 0) fail("job.invalid_lease_duration");
  if (!isInt32(input.limit) || input.limit < 0 || input.limit > MAX_CLAIM) {
    fail("job.invalid_pagination", { field: "limit" });
  }
  if (input.limit === 0 || input.jobTypes?.length === 0) return [];
  try {
    return await query.run(executor, {
      jobTypes: input.jobTypes === undefined ? null : [...input.jobTypes],
      limit: input.limit,
      workerId: input.workerId,
      leaseSeconds: input.leaseSeconds,
      markRunning: input.markRunning === true,
      prestart: input.prestart === true,
      attemptBase: uuidv7(),
    });
  } catch (error) {
    throw toQueryError(error);
  }
}

function claimedFromRow(row: RawRow): ClaimedJob {
  const job = jobFromRow(row) as ClaimedJob;
  job.workflowRunId = row.workflow_run_id ?? null;
  return job;
}

function claimOrder(a: JobRecord, b: JobRecord): number {
  return (
    b.priority - a.priority ||
    a.nextRunAt.getTime() - b.nextRunAt.getTime() ||
    a.createdAt.getTime() - b.createdAt.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}
