import { type SQL, sql } from "drizzle-orm";
import { clockNow, type Statement, statement } from "../../query.ts";
import { jobQueue, jobSchedules, workflowSteps } from "../../schema/index.ts";
import { flowConfigured, flowLeaseCandidates } from "../flow.ts";
import type { JobQueueRow } from "./ledger.ts";

/*
 * The claim is the hot path, so it is one prepared statement and one round trip: pick due
 * PENDING rows in priority order with FOR UPDATE SKIP LOCKED and lease them. The lease is the
 * whole ledger entry: the row holds its attempt (leased_at, worker, origin, the LEASED event's id
 * drawn from the event sequence), so a claim writes no attempt or event rows, and no index names
 * a column it changes, so the update is HOT (no index entries). Workflow steps move to RUNNING in
 * the same statement.
 *
 * Per job (`npm run bench -- --anatomy`: WAL of this database's relations via pg_walinspect, CPU
 * from `process.cpuUsage` and the backends' /proc times; concurrency 10, claim batch 500):
 *
 * |                      | 0.1 layout                       | now                      | graphile-worker | raw SQL |
 * |----------------------|----------------------------------|--------------------------|-----------------|---------|
 * | heap writes          | 2 job UPDATEs (0 HOT), attempt   | claim HOT UPDATE (95 %), | UPDATE, DELETE  | same    |
 * |                      | INSERT + HOT UPDATE, 2 event     | finish UPDATE            |                 |         |
 * |                      | INSERTs                          |                          |                 |         |
 * | index entries        | 14                               | 2.2                      | 2.0             | 1.0     |
 * | WAL records / bytes  | 23.3 / 2,459                     | 5.9 / 836                | 6.0 / 489       | 5.0 / 362 |
 * | PostgreSQL CPU       | 95.5 µs                          | 35.0 µs                  | 28.6 µs         | 22.8 µs |
 * | worker CPU           | 50.1 µs                          | 16.5 µs                  | 32.9 µs         | 9.3 µs  |
 *
 * (CPU: medians of 3 paired rounds of 50,000 jobs on 2026-12-03, README "Performance"; on a loaded
 * machine every column grows by half. Throughput there: 1.08× graphile-worker at concurrency 10,
 * 0.98× at 50.) The retention index added since (idx_job_queue_finished) costs one more index
 * entry when a standalone job finishes (~6 µs of PostgreSQL CPU, measured under load): with it,
 * 6.9 WAL records / 899 bytes and 3.25 index entries per job, 0.94 HOT claims (`npm run bench --
 * --rounds 1 --jobs 20000 --scenarios process-c10 --systems runledger,graphile --no-analyze
 * --anatomy`; that run, without statistics and beside a test suite, verified exactly once at
 * 77 µs of PostgreSQL CPU per job: the claim scans and sorts until ANALYZE). Enqueue
 * writes one job row and 3 index entries (its ENQUEUED event is derived from the row; see
 * enqueue.ts). Re-measured 2026-12-04 on a fresh machine (3 paired rounds, `npm run bench --
 * --rounds 3 --scenarios process-c10,process-c50 --systems runledger,baseline,graphile --anatomy`):
 * per job 6.9 WAL records / 896 bytes, 3.23 index entries, 0.95 HOT claims, PostgreSQL / worker
 * CPU 37.4 / 14.5 µs against graphile-worker's 6.1 / 491, 2.06, 22.4 / 24.5 µs; throughput 0.89× /
 * 0.90× graphile-worker at concurrency 10 / 50, the statements' anatomy unchanged from the build
 * before that day's merges; `--no-analyze` (20,000 jobs) verified exactly once at 66 µs. The
 * statement clock (the due check reads `coalesce($now, now())`) and the store's move into sql/
 * changed nothing measurable: paired with the build before them (3 rounds, same command plus
 * `workflow,enqueue-batch,latency` and `baseline,pgboss`), 1.00× / 1.00× at concurrency 10 / 50,
 * the same 6.9 WAL records, 897 bytes and 3.23 index entries per job (that run, on a machine
 * still warm from a test suite, put both builds at ~55 µs of PostgreSQL CPU per job and
 * graphile-worker at 27 µs; throughput 0.80× / 1.09× graphile-worker). Prepared once: a claim(1) built per call with the query builder
 * cost ~1.37 ms against ~0.58 ms prepared (toolchain notes). Prepared is not planned once,
 * though: with its limit a parameter the statement was planned on every execution (~0.4 ms; see
 * `claimSize` below). The worker's claims now carry their size written in; paired with the build
 * before (2026-12-04, `JOBS_CLAIM_BATCH_SIZE=16 RUNLEDGER_BASELINE_BUILD=… npm run bench --
 * --rounds 3 --scenarios process-c10,process-c50 --systems runledger,baseline`), the default
 * batch of 16 went from 9,369 to 11,298 jobs/s at concurrency 10 (1.21×; 1.21× at 50) and
 * PostgreSQL CPU from 91 to 70 µs per job. The bench's batch of 500 is unchanged (1.00× / 0.98×):
 * a 1.2-second run makes too few claims per connection and size to reach the generic plans.
 * Re-measured at the review (2026-12-04, paired with the build before claim sizes, fa4e48e; medians
 * of 3 rounds, a slower hour of the same machine):
 *
 * | `npm run bench -- --rounds 3 --scenarios process-c10,process-c50 …` | now            | before         | graphile-worker |
 * |---------------------------------------------------------------------|----------------|----------------|-----------------|
 * | batch 500, c10 / c50 jobs/s (`--systems runledger,baseline,graphile --anatomy`) | 35,906 / 33,648 | 36,012 / 36,784 | 39,746 / 42,059 |
 * | batch 500, PostgreSQL / worker CPU per job, c10                    | 26.6 / 11.2 µs | 26.2 / 11.8 µs | 14.8 / 18.0 µs  |
 * | batch 500, per job: WAL records / bytes, index entries, HOT claims | 6.9 / 895, 3.23, 0.95 | same   | 6.1 / 490, 2.06, 0 |
 * | batch 16 (`JOBS_CLAIM_BATCH_SIZE=16`, `--systems runledger,baseline`), c10 / c50 jobs/s | 9,699 / 10,761 | 8,619 / 8,827 | — |
 * | batch 16, PostgreSQL CPU per job, c10 / c50                        | 80.6 / 73.6 µs | 99.4 / 97.2 µs | —               |
 *
 * Batch 16: 1.13× / 1.22× the build before. Batch 500: 1.00× at c10; c50 0.91× in that run (rounds
 * 1.07, 0.77, 0.91) and 0.97× in 5 more rounds (0.90–1.03; `--rounds 5 --scenarios process-c50
 * --systems runledger,baseline`): a full batch of 500 now claims 480, so a little more often.
 * `--no-analyze --jobs 20000` verified exactly once at c10 and c50 (43 / 38 µs of PostgreSQL CPU).
 * Final review (2026-12-04, paired with fc5ec94, the build before this change; a machine running at
 * about half yesterday's speed, so compare ratios, not rates):
 *
 * | `… npm run bench -- --rounds 3 --scenarios process-c10,process-c50 …` | now             | before          | graphile-worker |
 * |-----------------------------------------------------------------------|-----------------|-----------------|-----------------|
 * | batch 500, c10 / c50 jobs/s (`--systems runledger,baseline,graphile --anatomy`) | 21,116 / 23,787 | 22,224 / 23,026 | 26,285 / 25,646 |
 * | batch 500, PostgreSQL / worker CPU per job, c10                       | 47.8 / 19.3 µs  | 44.6 / 20.6 µs  | 26.8 / 28.5 µs  |
 * | batch 500, per job: WAL records / bytes, index entries, HOT claims    | 6.9 / 896, 3.23, 0.95 | same      | 6.1 / 490, 2.06, 0 |
 * | batch 16 (`JOBS_CLAIM_BATCH_SIZE=16`, `--systems runledger,baseline`), c10 / c50 jobs/s | 7,606 / 7,226 | 5,742 / 6,283 | — |
 * | batch 16, PostgreSQL CPU per job, c10 / c50                           | 109 / 108 µs    | 151 / 145 µs    | —               |
 *
 * Batch 500: 0.95× / 1.03× the build before (rounds 0.87, 0.95, 1.11 and 1.04, 0.86, 1.02: noise);
 * batch 16: 1.32× / 1.15×. `--rounds 1 --no-analyze --jobs 20000 --systems runledger,graphile`:
 * exactly once at c10 and c50. Per statement (`pg_stat_statements`, batch 500, c10) the completion
 * costs 31 µs and 4.5 WAL records per job, the claim 24 µs and 2.3; graphile-worker's delete 16 µs
 * and 1, its claim 19 µs and 5.1. The completion cannot be HOT while `finished_at` is in the claim
 * index's predicate and in the retention index.
 * What is left to take (2026-12-04, README "Performance": `npm run bench -- --rounds 3 --scenarios
 * process-c10,process-c50 --anatomy --systems runledger,graphile,raw,rawledger,rawledger-hot,rawledger-min`):
 * dropping the listing and retention indexes (the completion then writes the primary key only) gave
 * 2–3 µs and 1.00× / 1.09× in 4 paired rounds. Raw SQL keeping a ledger row per job, both updates
 * HOT, runnable jobs in a table of their own and a 7 µs worker, ran 1.15–1.36× graphile-worker
 * (PostgreSQL 25–27 µs); only the shape that cannot find expired leases cleared 1.3× in both runs.
 *
 * Planner-proof: candidates come from the claim index (or, with no statistics, a scan and a sort:
 * slower, never wrong); the update and the step lookups are driven by id arrays, so they stay on
 * primary keys whatever the estimates.
 *
 * `markRunning` folds the worker's "running" marker into the claim (stage `running`, execution
 * start persisted), saving a round trip per batch: the worker starts every job it claims at once,
 * since it never claims more than its free capacity. Without it the attempt stays unstarted until
 * a progress write with stage `running` persists the marker. `prestart` records the attempt as a
 * WORKER_PRESTART claim: if its lease runs out while it is still unstarted, the reaper returns
 * the claim without counting the attempt (spec §5.7); any other expired attempt fails as
 * LEASE_EXPIRED. The runtime worker claims with `markRunning` and without `prestart`.
 *
 * The due check (`next_run_at <= …`) reads the statement clock (`clockNow`): a caller may claim
 * as of a given `now`; workers send none and get `now()`. Everything the lease writes (its
 * deadline, heartbeat, start) is the server's `now()`.
 */
function claimStatement<Row>(name: string, result: SQL, flow?: SQL, size?: number) {
  return statement<Row>(
    name,
    sql`
  with ${flow ?? directCandidates(size === undefined ? sql.placeholder("limit") : sql.raw(String(size)))},
  leased as (
    update ${jobQueue} j set
      status = 'LEASED',
      attempt = j.attempt + 1,
      worker_id = ${sql.placeholder("workerId")},
      lease_expires_at = now() + make_interval(secs => ${sql.placeholder("leaseSeconds")}::int),
      last_heartbeat_at = now(),
      started_at = coalesce(j.started_at, now()),
      stage = case when ${sql.placeholder("markRunning")}::boolean then 'running' else j.stage end,
      leased_at = now(),
      lease_seconds = ${sql.placeholder("leaseSeconds")}::int,
      lease_stage = case when ${sql.placeholder("markRunning")}::boolean then 'running' else j.stage end,
      claim_origin = case when ${sql.placeholder("prestart")}::boolean then 'WORKER_PRESTART' else 'DIRECT' end::runledger.claim_origin,
      execution_started_at = case when ${sql.placeholder("markRunning")}::boolean then now() end,
      lease_event_id = nextval('runledger.job_events_id_seq'),
      finish_event_id = null,
      updated_at = now()
    -- An array keeps the update on primary-key lookups; a join lets the planner pick a hash join
    -- over the whole table, whose cost grows with every finished job the ledger keeps.
    where j.id = any(array(select id from candidates))
    -- A job record's columns: not the idempotency snapshot, which the driver would parse for nothing.
    returning j.id, j.job_type, j.organization_id, j.payload, j.status, j.priority, j.run_number, j.attempt,
      j.max_attempts, j.timeout_seconds, j.next_run_at, j.lease_expires_at, j.last_heartbeat_at, j.worker_id,
      j.started_at, j.finished_at, j.stage, j.progress_done, j.progress_total, j.progress_pct, j.checkpoint,
      j.idempotency_key, j.status_reason, j.last_error_code, j.last_error_message, j.workflow_step_id,
      j.schedule_id, j.scheduled_for, j.job_key, j.created_at, j.updated_at, j.trace_context
  ),
  steps as (
    update ${workflowSteps} s set status = 'RUNNING', started_at = coalesce(s.started_at, now())
    -- Only claimed workflow steps, by primary key: never a scan of the (ever-growing) steps table.
    where s.id = any(array(select workflow_step_id from leased where workflow_step_id is not null))
      and s.status in ('ENQUEUED', 'RUNNING')
  )
  ${result}
`,
  );
}

/*
 * The direct claim's candidates. Under flow control (src/store/flow/) it leases nothing: the
 * guard is one probe of two (normally empty) places evaluated once per statement, and the caller
 * then takes the flow-controlled claim. Without flow control the statement is the one measured
 * above, but for its due check, which reads the statement clock: `coalesce($1, now())` is still
 * the claim index's index condition (the generic plan estimates a third of the rows due instead
 * of all; same plan, checked with and without statistics).
 */
const directCandidates = (limit: SQL | ReturnType<typeof sql.placeholder>) => sql`candidates as (
    select id from ${jobQueue}
    where finished_at is null and status = 'PENDING'
      and next_run_at <= ${clockNow}
      and (${sql.placeholder("jobTypes")}::text[] is null or job_type = any(${sql.placeholder("jobTypes")}::text[]))
      and not ${flowConfigured}
    order by priority desc nulls last, next_run_at, created_at, id
    limit ${limit}
    for update skip locked
  )`;

/** The run of a leased row's step: a primary-key lookup per step job, nothing for plain jobs. */
const stepRun = sql`(select s.workflow_run_id from ${workflowSteps} s where s.id = l.workflow_step_id)`;

/** The step key of a leased row's step, for telemetry: a second primary-key lookup, step jobs only. */
const stepKey = sql`(select s.step_key from ${workflowSteps} s where s.id = l.workflow_step_id)`;

/** `claimJobs`' result: full records, with their step's run; jobs/claim.ts restores the claim order. */
const claimResult = sql`select l.*, ${stepRun} as workflow_run_id from leased l`;

/** The direct claim of full records (`claimJobs`: API callers, tests), one statement. */
export const claim = claimStatement<ClaimRow>("runledger_claim_jobs", claimResult);

/*
 * Claim sizes. With its limit as a parameter the claim is planned anew on every execution: the
 * plan cache prices the generic plan for a tenth of the table (what it assumes of an unknown
 * LIMIT) against custom plans for the real limit, so the generic plan never wins. Planning this
 * statement costs ~0.4 ms, a fixed cost per claim that a small batch pays per few jobs (measured
 * with the worker's default batch of 16: ~20 µs of PostgreSQL CPU per job). So a claim whose
 * limit is a claim size (`isClaimSize`) runs a statement with that size written in, which settles
 * on its generic plan after five executions like every other prepared statement; the worker asks
 * for claim sizes only (`claimSize`). Other limits take the parameterized statement.
 *
 * Claim sizes are 1–16 and, above, the numbers whose binary form has at most four significant
 * bits (…, 448, 480, 512, 576, …): rounding a limit down to one claims less than an eighth fewer jobs,
 * and a worker whose limits fall between half a batch and a batch prepares at most nine.
 */
export function claimSize(limit: number): number {
  if (limit <= 16) return Math.max(0, Math.floor(limit));
  const dropped = Math.floor(Math.log2(limit)) - 3;
  return Math.floor(limit / 2 ** dropped) * 2 ** dropped;
}

export function isClaimSize(limit: number): boolean {
  return limit > 0 && claimSize(limit) === limit;
}

/** `statement(size)` for a claim size, made once per size. */
function sized<Row>(make: (size: number) => Statement<Row>): (size: number) => Statement<Row> {
  const made = new Map<number, Statement<Row>>();
  return (size) => {
    let found = made.get(size);
    if (found === undefined) {
      found = make(size);
      made.set(size, found);
    }
    return found;
  };
}

/** `claim` with a claim size written in. */
export const claimOfSize = sized((size) =>
  claimStatement<ClaimRow>(`runledger_claim_jobs_${size}`, claimResult, undefined, size),
);

/** The same lease for the jobs a flow-controlled claim admitted (src/store/flow/claim.ts). */
export const flowClaim = claimStatement<ClaimRow>("runledger_flow_claim_jobs", claimResult, flowLeaseCandidates);

/*
 * The worker's claim returns only what running a job needs, already in claim order: parsing and
 * then collecting the 28 columns of a full record per job was a fifth of a worker's CPU time on
 * no-op jobs (most of it garbage collection).
 */
const runnableResult = sql`select l.id, l.job_type, l.organization_id, l.payload, l.run_number, l.attempt, l.max_attempts,
    l.timeout_seconds, l.checkpoint, l.workflow_step_id,
    case when l.workflow_step_id is not null then ${stepRun} end as workflow_run_id,
    case when l.workflow_step_id is not null then ${stepKey} end as step_key, l.schedule_id, l.scheduled_for,
    case when l.schedule_id is not null
      then (select sc.name from ${jobSchedules} sc where sc.id = l.schedule_id) end as schedule_name,
    l.trace_context
  from leased l
  order by l.priority desc nulls last, l.next_run_at, l.created_at, l.id`;

/** The worker's direct claim (`claimRunnableJobs`): the statement measured above. */
export const claimRunnable = claimStatement<RunnableRow>("runledger_claim_runnable_jobs", runnableResult);

/** `claimRunnable` with a claim size written in: what the worker runs. */
export const claimRunnableOfSize = sized((size) =>
  claimStatement<RunnableRow>(`runledger_claim_runnable_jobs_${size}`, runnableResult, undefined, size),
);

/** The worker's lease of the jobs a flow-controlled claim admitted. */
export const flowClaimRunnable = claimStatement<RunnableRow>(
  "runledger_flow_claim_runnable_jobs",
  runnableResult,
  flowLeaseCandidates,
);

/**
 * Whether flow control is configured: asked only after a direct claim found nothing (the direct
 * claim leases nothing under flow control), so an idle poll costs one small statement more.
 */
export const flowCheck = statement<{ active: boolean }>(
  "runledger_flow_configured",
  sql`select ${flowConfigured} as active`,
);

/**
 * A row of the full claim: the job record's columns as `returning` lists them (not the idempotency
 * snapshot, the held attempt's columns or the enqueue's), and the workflow run of its step.
 */
export type ClaimRow = Omit<
  JobQueueRow,
  | "enqueue_request"
  | "leased_at"
  | "lease_seconds"
  | "lease_stage"
  | "claim_origin"
  | "execution_started_at"
  | "lease_event_id"
  | "finish_event_id"
  | "enqueue_event_id"
  | "enqueue_stage"
  | "concurrency_key"
> & { workflow_run_id: string | null };

/** A row of the worker's claim (`runnableResult`). */
export type RunnableRow = Pick<
  JobQueueRow,
  | "id"
  | "job_type"
  | "organization_id"
  | "payload"
  | "run_number"
  | "attempt"
  | "max_attempts"
  | "timeout_seconds"
  | "checkpoint"
  | "workflow_step_id"
  | "schedule_id"
  | "scheduled_for"
  | "trace_context"
> & { workflow_run_id: string | null; step_key: string | null; schedule_name: string | null };
