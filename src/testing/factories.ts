import { sql } from "drizzle-orm";
import {
  ALL_ORGANIZATIONS,
  JOB_STATUSES,
  type JobStatus,
  MAX_WORKFLOW_STEPS,
  WORKFLOW_STEP_STATUSES,
  type WorkflowRunEnqueue,
  type WorkflowStepStatus,
} from "../core/index.ts";
import {
  cancelJob,
  completeExternalWorkflowStep,
  type Executor,
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getWorkflowRunById,
  insertJobDefinitionIfMissing,
  type JobEnqueue,
  type JobRecord,
  listWorkflowSteps,
  queryRows,
  schema,
  type WorkflowRunRecord,
  type WorkflowStepRecord,
} from "../store/index.ts";
import { completeJobFailure, completeJobSuccess, type LeaseIdentity } from "../store/worker.ts";

/*
 * Factories: a job or a workflow run in a given state, for tests. They take the real paths
 * (enqueue, complete, fail, cancel, complete an external step), so the rows, the attempts and the
 * events are the ones production writes and every read sees them as it would. The one step they
 * write themselves is the lease: a claim takes whichever due job comes first, and a factory must
 * lease the job it made. `leaseJob` sets what the worker's claim sets (`claimRunnableJobs` with
 * `markRunning`); test/harness/factories.test.ts compares both and fails when they part.
 */

/** The worker a factory's attempts are recorded under unless the caller names one. */
export const FACTORY_WORKER_ID = "runledger-testing";

const DEFAULT_FAILURE = { code: "testing.failed", message: "Failed by a test factory." } as const;

/** What `insertJob` makes: an enqueue, and the state to bring the job to. */
export interface InsertJobOptions extends JobEnqueue {
  /**
   * The job's status. Default PENDING. LEASED holds a running attempt (stage `running`),
   * SUCCEEDED and DEAD_LETTERED have one finished attempt, CANCELED was canceled while pending.
   */
  status?: JobStatus;
  /**
   * Attempts that failed retryably before the one `status` describes; with status PENDING the
   * job waits for its next attempt (due `retryDelayMs` after the last failure). Default 0. They
   * must leave an attempt to spare (fewer than `maxAttempts`).
   */
  failedAttempts?: number;
  /** Delay of each retry the failed attempts schedule. Default 1 ms. */
  retryDelayMs?: number;
  /** The worker the attempts are recorded under. Default `FACTORY_WORKER_ID`. */
  workerId?: string;
  /** Lease length of each attempt, in seconds. Default 60. */
  leaseSeconds?: number;
  /** LEASED only: when the lease runs out; a past time makes a lease the reaper recovers. */
  leaseExpiresAt?: Date;
  /** The failure of a DEAD_LETTERED job's last attempt, and of each failed attempt. */
  failure?: { code: string; message: string };
  /** CANCELED only: the cancel's reason. Default `CANCELED`. */
  reason?: string;
}

/** The job as `getJobById` reads it, and the lease a LEASED job's worker holds (null otherwise). */
export interface InsertedJob extends JobRecord {
  lease: LeaseIdentity | null;
}

/**
 * Insert a job in the state `options` asks for, through the store's own operations (see above).
 * The job type gets an enabled definition with the defaults when it has none. Flow control is not
 * consulted: a factory lease takes no concurrency slot.
 */
export async function insertJob(db: Executor, options: InsertJobOptions): Promise<InsertedJob> {
  const {
    status = "PENDING",
    failedAttempts = 0,
    retryDelayMs = 1,
    workerId = FACTORY_WORKER_ID,
    leaseSeconds = 60,
    leaseExpiresAt,
    failure = DEFAULT_FAILURE,
    reason,
    ...enqueue
  } = options;
  if (!JOB_STATUSES.includes(status)) throw new Error(`insertJob: unknown status ${String(status)}`);
  if (!Number.isInteger(failedAttempts) || failedAttempts < 0) {
    throw new Error("insertJob: failedAttempts must be a whole number, 0 or more");
  }
  if (leaseExpiresAt !== undefined && status !== "LEASED") throw new Error("insertJob: leaseExpiresAt needs LEASED");
  if (reason !== undefined && status !== "CANCELED") throw new Error("insertJob: reason needs CANCELED");
  await insertJobDefinitionIfMissing(db, { jobType: enqueue.jobType });
  const { id } = await enqueueJob(db, enqueue);
  const lease = () => leaseJob(db, id, { workerId, leaseSeconds });
  for (let i = 0; i < failedAttempts; i++) {
    const outcome = await completeJobFailure(db, { lease: await lease(), kind: "RETRYABLE", ...failure, retryDelayMs });
    if (outcome.outcome !== "RETRY_SCHEDULED") {
      throw new Error(`insertJob: ${failedAttempts} failed attempts leave none to spare (maxAttempts)`);
    }
  }
  let held: LeaseIdentity | null = null;
  if (status === "LEASED") held = await leaseJob(db, id, { workerId, leaseSeconds, expiresAt: leaseExpiresAt });
  else if (status === "SUCCEEDED") await completeJobSuccess(db, { lease: await lease() });
  else if (status === "DEAD_LETTERED")
    await completeJobFailure(db, { lease: await lease(), kind: "TERMINAL", ...failure });
  else if (status === "CANCELED") await cancelJob(db, { jobId: id, scope: ALL_ORGANIZATIONS, reason });
  const job = (await getJobById(db, id, ALL_ORGANIZATIONS))!;
  return { ...job, lease: held };
}

/** What `insertWorkflowRun` makes: a run, and the statuses some of its steps should end in. */
export interface InsertWorkflowRunOptions {
  /** The run to enqueue, as a builder makes it (`WorkflowDagBuilder.new(…).….build()`). */
  run: WorkflowRunEnqueue;
  /**
   * Step key → the status it should have. A JOB step becomes RUNNING (its job leased), SUCCEEDED,
   * FAILED (a terminal failure) or CANCELED (its job canceled); an EXTERNAL step SUCCEEDED, FAILED
   * or CANCELED (completed as such). Dependents are released or canceled as the real path does, so
   * a step can only reach a status its prerequisites allow; ENQUEUED, BLOCKED and
   * WAITING_FOR_EXTERNAL are checked, not driven. Unnamed steps keep whatever that leaves them.
   */
  statuses?: Readonly<Record<string, WorkflowStepStatus>>;
  /** The worker the job steps' attempts are recorded under. Default `FACTORY_WORKER_ID`. */
  workerId?: string;
}

export interface InsertedWorkflowRun {
  run: WorkflowRunRecord;
  /** Every step of the run, by step key. */
  steps: Record<string, WorkflowStepRecord>;
}

/**
 * Enqueue a workflow run and drive the steps `statuses` names, in dependency order, through the
 * store's own operations; throws naming the steps that could not reach their status. Job types
 * get an enabled definition with the defaults when they have none.
 */
export async function insertWorkflowRun(db: Executor, options: InsertWorkflowRunOptions): Promise<InsertedWorkflowRun> {
  const { run, statuses = {}, workerId = FACTORY_WORKER_ID } = options;
  const keys = new Set(run.steps.map((step) => step.stepKey));
  for (const [key, status] of Object.entries(statuses)) {
    if (!keys.has(key)) throw new Error(`insertWorkflowRun: the run has no step ${key}`);
    if (!WORKFLOW_STEP_STATUSES.includes(status))
      throw new Error(`insertWorkflowRun: unknown status ${String(status)}`);
  }
  for (const jobType of new Set(run.steps.flatMap((step) => (step.jobType ? [step.jobType] : [])))) {
    await insertJobDefinitionIfMissing(db, { jobType });
  }
  const { id } = await enqueueWorkflowRun(db, run);
  const driven = new Set<string>();
  for (let progressed = true; progressed; ) {
    progressed = false;
    for (const step of await stepsOf(db, id)) {
      const target = statuses[step.stepKey];
      if (target === undefined || driven.has(step.stepKey) || !(await drive(db, step, target, workerId))) continue;
      driven.add(step.stepKey);
      progressed = true;
      break; // re-read: driving a step may release or cancel others
    }
  }
  const steps = Object.fromEntries((await stepsOf(db, id)).map((step) => [step.stepKey, step]));
  const missed = Object.entries(statuses).filter(([key, status]) => steps[key]!.status !== status);
  if (missed.length > 0) {
    const list = missed.map(([key, status]) => `${key} is ${steps[key]!.status}, not ${status}`).join("; ");
    throw new Error(`insertWorkflowRun: ${list} (a step reaches a status only as its prerequisites allow)`);
  }
  return { run: (await getWorkflowRunById(db, id, ALL_ORGANIZATIONS))!, steps };
}

async function stepsOf(db: Executor, workflowRunId: string): Promise<WorkflowStepRecord[]> {
  return (await listWorkflowSteps(db, { workflowRunId, scope: ALL_ORGANIZATIONS, limit: MAX_WORKFLOW_STEPS })).items;
}

/** Move `step` toward `target` if it can go there now; whether it did. */
async function drive(db: Executor, step: WorkflowStepRecord, target: WorkflowStepStatus, workerId: string) {
  if (step.executionKind === "EXTERNAL") {
    if (step.status !== "WAITING_FOR_EXTERNAL") return false;
    if (target !== "SUCCEEDED" && target !== "FAILED" && target !== "CANCELED") return false;
    await completeExternalWorkflowStep(db, {
      workflowRunId: step.workflowRunId,
      scope: ALL_ORGANIZATIONS,
      stepKey: step.stepKey,
      terminalStatus: target,
      ...(target === "FAILED"
        ? { lastErrorCode: DEFAULT_FAILURE.code, lastErrorMessage: DEFAULT_FAILURE.message }
        : {}),
    });
    return true;
  }
  if (step.status !== "ENQUEUED" || step.jobId === null) return false;
  const lease = () => leaseJob(db, step.jobId!, { workerId, leaseSeconds: 60 });
  if (target === "RUNNING") await lease();
  else if (target === "SUCCEEDED") await completeJobSuccess(db, { lease: await lease() });
  else if (target === "FAILED")
    await completeJobFailure(db, { lease: await lease(), kind: "TERMINAL", ...DEFAULT_FAILURE });
  else if (target === "CANCELED") await cancelJob(db, { jobId: step.jobId, scope: ALL_ORGANIZATIONS });
  else return false;
  return true;
}

const { jobQueue, workflowSteps } = schema;

/**
 * Lease one PENDING job to `workerId`, as the worker's claim does (`claimRunnableJobs` with
 * `markRunning`: stage `running`, execution start persisted, the LEASED event's id drawn from the
 * event sequence, a workflow step moved to RUNNING), but by id, whatever else is due.
 */
async function leaseJob(
  db: Executor,
  jobId: string,
  options: { workerId: string; leaseSeconds: number; expiresAt?: Date },
): Promise<LeaseIdentity> {
  const expiresAt =
    options.expiresAt === undefined
      ? sql`now() + make_interval(secs => ${options.leaseSeconds}::int)`
      : sql`${options.expiresAt.toISOString()}::timestamptz`;
  const [row] = await queryRows<{ run_number: number; attempt: number }>(
    db,
    sql`
    with leased as (
      update ${jobQueue} j set
        status = 'LEASED',
        attempt = j.attempt + 1,
        worker_id = ${options.workerId},
        lease_expires_at = ${expiresAt},
        last_heartbeat_at = now(),
        started_at = coalesce(j.started_at, now()),
        stage = 'running',
        leased_at = now(),
        lease_seconds = ${options.leaseSeconds}::int,
        lease_stage = 'running',
        claim_origin = 'DIRECT',
        execution_started_at = now(),
        lease_event_id = nextval('runledger.job_events_id_seq'),
        finish_event_id = null,
        updated_at = now()
      where j.id = ${jobId}::uuid and j.status = 'PENDING'
      returning j.run_number, j.attempt, j.workflow_step_id
    ),
    steps as (
      update ${workflowSteps} s set status = 'RUNNING', started_at = coalesce(s.started_at, now())
      where s.id = (select workflow_step_id from leased) and s.status in ('ENQUEUED', 'RUNNING')
    )
    select run_number, attempt from leased`,
  );
  if (row === undefined) throw new Error(`insertJob: job ${jobId} is not PENDING, so it cannot be leased`);
  return { jobId, runNumber: Number(row.run_number), attempt: Number(row.attempt), workerId: options.workerId };
}
