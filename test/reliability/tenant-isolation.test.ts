import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type SQL, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { type ErrorCode, newId, RunledgerError, type WorkflowStepEnqueue } from "../../src/core/index.ts";
import { JobCatalog } from "../../src/runtime/index.ts";
import * as store from "../../src/store/index.ts";
import {
  appendWorkflowSteps,
  backfillJobSchedule,
  cancelJob,
  cancelJobs,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  countJobs,
  countJobsByStatus,
  countWorkflowRuns,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  getJobById,
  getJobMetrics,
  getJobPayloadByIdempotencyKey,
  getJobSchedule,
  getJobThroughput,
  getJobWorkflowStep,
  getLatestJobPayloadForRun,
  getLatestWorkflowRunByType,
  getOldestDueJob,
  getWorkflowRunById,
  getWorkflowRunByIdempotencyKey,
  getWorkflowRunIdForJob,
  insertJobLog,
  listDeadLetters,
  listJobAttempts,
  listJobEvents,
  listJobLogs,
  listJobSchedules,
  listJobs,
  listLeasedJobs,
  listRecentWorkers,
  listWorkflowRuns,
  listWorkflowStepDependencies,
  listWorkflowStepKeysForUpdate,
  listWorkflowSteps,
  purgeFinished,
  purgeWorkflowRuns,
  queryRows,
  readFinishedWorkflowRuns,
  readQueueDepth,
  requeueJob,
  requeueJobs,
  retryWorkflowRun,
  searchJobsAndRuns,
  setJobScheduleActive,
  setJobScheduleNextFireAt,
  updateWorkflowStepAndPendingJobPayload,
  upsertJobSchedule,
  waitForWorkflowRun,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

/*
 * Tenant isolation: with data in organizations A and B, every API that takes an organization
 * scope, called for A, neither returns nor changes B's rows — and, pointed at one of B's ids,
 * answers as if it did not exist (null, empty, or the not-found code) instead of revealing it.
 */

const { db } = await useTestDatabase();

const A = "00000000-0000-7000-8000-00000000000a";
const B = "00000000-0000-7000-8000-00000000000b";
const T0 = new Date("2030-01-01T00:00:00Z");
const DAY = 86_400_000;
const YEAR_AHEAD = new Date(Date.now() + 365 * DAY);

interface Seeded {
  pending: string;
  dead: string;
  run: string;
  cancelRun: string;
  schedule: string;
  /** A run with one job step, and that step's job. */
  stepRun: string;
  runJob: string;
  /** A job leased now. */
  leasedJob: string;
  /** The `run_id` the organization's `tenant.other` job's payload names. */
  runRef: string;
  /** A COMPLETED_WITH_ERRORS run: its one step's job (`failedJob`) was dead-lettered. */
  failedRun: string;
  failedJob: string;
  /** A run whose one step's job is PENDING. */
  pendingRun: string;
  pendingStep: string;
  pendingJob: string;
}
const seeded: Record<string, Seeded> = {};

function step(stepKey: string, overrides: Partial<WorkflowStepEnqueue> = {}): WorkflowStepEnqueue {
  return externalStep(stepKey, [], overrides);
}
const jobStep = (stepKey: string, after: string) =>
  step(stepKey, {
    executionKind: "JOB",
    jobType: "tenant.job",
    dependencies: [{ prerequisiteStepKey: after, releaseMode: "ON_SUCCESS" }],
  });
const runOf = (org: string, idempotencyKey: string | null = null) => ({
  workflowType: "tenant.flow",
  organizationId: org,
  metadata: { org },
  idempotencyKey,
  steps: [step("gate"), step("window"), jobStep("after", "gate")],
});

const oneStepRun = (org: string, workflowType: string, jobType: string) =>
  enqueueWorkflowRun(db, {
    workflowType,
    organizationId: org,
    metadata: { org },
    idempotencyKey: null,
    steps: [step("only", { executionKind: "JOB", jobType })],
  });

/**
 * Jobs, a dead letter with attempts and logs, workflow runs (live, failed, with a pending job) and
 * a schedule for `org`.
 */
async function seed(org: string, label: string, extraPending: number, extraRuns: number): Promise<Seeded> {
  const pending = (await enqueueJob(db, { jobType: "tenant.job", organizationId: org, payload: { org } })).id;
  for (let i = 0; i < extraPending; i++) await enqueueJob(db, { jobType: "tenant.job", organizationId: org });
  await enqueueJob(db, {
    jobType: "tenant.job",
    organizationId: org,
    idempotencyKey: `key-${label}`,
    payload: { org },
  });
  await enqueueJob(db, {
    jobType: "tenant.job",
    organizationId: org,
    idempotencyKey: `key2-${label}`,
    payload: { org },
  });
  const dead = (await enqueueJob(db, { jobType: "tenant.dead", organizationId: org, payload: { org } })).id;
  const [claimed] = await claimJobs(db, {
    workerId: `w-${org}`,
    leaseSeconds: 60,
    limit: 1,
    jobTypes: ["tenant.dead"],
  });
  expect(claimed!.id).toBe(dead);
  const lease = { jobId: dead, runNumber: 1, attempt: 1, workerId: `w-${org}` };
  await insertJobLog(db, {
    scope: { organizationId: org },
    jobId: dead,
    runNumber: 1,
    attempt: 1,
    level: "info",
    message: `log of ${org}`,
  });
  await completeJobFailure(db, { lease, kind: "TERMINAL", code: "tenant.failed", message: `failure of ${org}` });
  const run = (await enqueueWorkflowRun(db, runOf(org, `run-${label}`))).id;
  const cancelRun = (await enqueueWorkflowRun(db, runOf(org))).id;
  for (let i = 0; i < extraRuns; i++) await enqueueWorkflowRun(db, runOf(org));
  const runRef = newId();
  await enqueueJob(db, { jobType: "tenant.other", organizationId: org, payload: { run_id: runRef, org } });
  const failedRun = (await oneStepRun(org, "tenant.failing", "tenant.step")).id;
  const [failing] = await claimJobs(db, {
    workerId: `w-${org}`,
    leaseSeconds: 60,
    limit: 1,
    jobTypes: ["tenant.step"],
  });
  const failedLease = { jobId: failing!.id, runNumber: 1, attempt: 1, workerId: `w-${org}` };
  await completeJobFailure(db, {
    lease: failedLease,
    kind: "TERMINAL",
    code: "tenant.failed",
    message: `step of ${org}`,
  });
  const pendingRun = (await oneStepRun(org, "tenant.pending", "tenant.other")).id;
  const [pendingStep] = await listWorkflowSteps(db, pendingRun);
  const schedule = `nightly-${label}`;
  await upsertJobSchedule(db, {
    name: schedule,
    jobType: "tenant.job",
    organizationId: org,
    cronExpr: "0 0 0 * * *",
    nextFireAt: T0,
    payloadTemplate: { org },
  });
  const stepRun = await enqueueWorkflowRun(db, {
    workflowType: "tenant.steps",
    organizationId: org,
    metadata: {},
    idempotencyKey: null,
    steps: [step("job", { executionKind: "JOB", jobType: "tenant.runstep" })],
  });
  const runJob = (await listWorkflowSteps(db, stepRun.id))[0]!.jobId!;
  const leasedJob = (await enqueueJob(db, { jobType: "tenant.lease", organizationId: org })).id;
  await claimJobs(db, { workerId: `w-${org}`, leaseSeconds: 600, limit: 1, jobTypes: ["tenant.lease"] });
  return {
    pending,
    dead,
    run,
    cancelRun,
    schedule,
    runRef,
    failedRun,
    failedJob: failing!.id,
    pendingRun,
    pendingStep: pendingStep!.id,
    pendingJob: pendingStep!.jobId!,
    stepRun: stepRun.id,
    runJob,
    leasedJob,
  };
}

beforeAll(async () => {
  await defineJob(db, "tenant.job");
  await defineJob(db, "tenant.dead", { maxAttempts: 1 });
  await defineJob(db, "tenant.step", { maxAttempts: 1 });
  await defineJob(db, "tenant.other");
  await defineJob(db, "tenant.lease");
  await defineJob(db, "tenant.runstep");
  seeded.A = await seed(A, "a", 0, 0);
  seeded.B = await seed(B, "b", 3, 1);
});

/** Every row of `org`, table by table, as text: equal snapshots mean byte-for-byte unchanged rows. */
async function rowsOf(org: string): Promise<Record<string, string[]>> {
  const jobs = sql`(select id from runledger.job_queue where organization_id = ${org})`;
  const runs = sql`(select id from runledger.workflow_runs where organization_id = ${org})`;
  const tables: Record<string, SQL> = {
    job_queue: sql`organization_id = ${org}`,
    job_events: sql`job_id in ${jobs}`,
    job_attempts: sql`job_id in ${jobs}`,
    job_logs: sql`job_id in ${jobs}`,
    job_dead_letters: sql`job_id in ${jobs}`,
    workflow_runs: sql`organization_id = ${org}`,
    workflow_steps: sql`workflow_run_id in ${runs}`,
    workflow_step_dependencies: sql`workflow_run_id in ${runs}`,
    workflow_run_mutations: sql`workflow_run_id in ${runs}`,
    job_schedules: sql`organization_id = ${org}`,
  };
  const out: Record<string, string[]> = {};
  for (const [table, where] of Object.entries(tables)) {
    const rows = await queryRows<{ row: string }>(
      db,
      sql`select t::text as row from ${sql.identifier("runledger")}.${sql.identifier(table)} t where ${where} order by 1`,
    );
    out[table] = rows.map((r) => r.row);
  }
  return out;
}

/** What A's call on B's data must come back with. */
type Verdict = { hidden: (result: unknown) => void } | { refused: ErrorCode };

interface Entry {
  /** B's id or name the call aims at, for APIs that take one. */
  target?: () => string;
  /** A's call, aimed at `target` when there is one. */
  leak: (id: string) => Promise<unknown>;
  verdict: Verdict;
  /** The same call for B: it must see (or change) the row A could not, so the test can fail. */
  own: () => Promise<unknown>;
  /** What `own` must return; the row A could not see. */
  ownSees: (result: unknown) => void;
}

const nothing = (result: unknown) => expect(result).toSatisfy((r) => r === null || (Array.isArray(r) && !r.length));
const found = (result: unknown) => expect(result).toSatisfy((r) => r !== null && (!Array.isArray(r) || r.length > 0));
const onlyA = (items: { organizationId: string | null }[]) => {
  expect(items.length).toBeGreaterThan(0);
  for (const item of items) expect(item.organizationId).toBe(A);
};
const page = (result: unknown) => (result as { items: { id: string; organizationId: string | null }[] }).items;
const deadLettered = (result: unknown) =>
  (result as { totals: { deadLettered: { count: number } } }).totals.deadLettered.count;
const pendingCount = (result: unknown) => (result as { pendingCount: number }[])[0]!.pendingCount;

/** Due pending jobs over every job type of a `readQueueDepth` answer. */
const dueJobs = (r: unknown) => (r as { depth: number }[]).reduce((sum, row) => sum + row.depth, 0);

/** Every organization-scoped API of `runledger/store`, by name. Reads first: mutations below use B's rows up. */
const SCOPED: Record<string, Entry> = {
  getJobById: {
    target: () => seeded.B!.pending,
    leak: (id) => getJobById(db, id, { organizationId: A }),
    verdict: { hidden: nothing },
    own: () => getJobById(db, seeded.B!.pending, { organizationId: B }),
    ownSees: found,
  },
  listJobs: {
    leak: () => listJobs(db, { organizationId: A, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listJobs(db, { organizationId: B, limit: 1000 }),
    ownSees: (r) => expect(page(r).map((j) => j.id)).toContain(seeded.B!.pending),
  },
  listJobEvents: {
    target: () => seeded.B!.dead,
    leak: (id) => listJobEvents(db, { jobId: id, organizationId: A, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobEvents(db, { jobId: seeded.B!.dead, organizationId: B, limit: 100 }),
    ownSees: found,
  },
  listJobAttempts: {
    target: () => seeded.B!.dead,
    leak: (id) => listJobAttempts(db, { jobId: id, organizationId: A, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobAttempts(db, { jobId: seeded.B!.dead, organizationId: B, limit: 100 }),
    ownSees: found,
  },
  listJobLogs: {
    target: () => seeded.B!.dead,
    leak: (id) => listJobLogs(db, { jobId: id, organizationId: A, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobLogs(db, { jobId: seeded.B!.dead, organizationId: B, limit: 100 }),
    ownSees: found,
  },
  getJobMetrics: {
    // A has 3 pending tenant.job jobs, B has 6: each scope counts its own only.
    leak: () => getJobMetrics(db, { organizationId: A, jobType: "tenant.job" }),
    verdict: { hidden: (r) => expect(pendingCount(r)).toBe(3) },
    own: () => getJobMetrics(db, { organizationId: B, jobType: "tenant.job" }),
    ownSees: (r) => expect(pendingCount(r)).toBe(6),
  },
  getWorkflowRunById: {
    target: () => seeded.B!.run,
    leak: (id) => getWorkflowRunById(db, id, { organizationId: A }),
    verdict: { hidden: nothing },
    own: () => getWorkflowRunById(db, seeded.B!.run, { organizationId: B }),
    ownSees: found,
  },
  listWorkflowRuns: {
    leak: () => listWorkflowRuns(db, { organizationId: A, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listWorkflowRuns(db, { organizationId: B, limit: 1000 }),
    ownSees: (r) => expect(page(r).map((x) => x.id)).toContain(seeded.B!.run),
  },
  listWorkflowSteps: {
    target: () => seeded.B!.run,
    leak: (id) => listWorkflowSteps(db, id, { organizationId: A }),
    verdict: { hidden: nothing },
    own: () => listWorkflowSteps(db, seeded.B!.run, { organizationId: B }),
    ownSees: found,
  },
  listWorkflowStepDependencies: {
    target: () => seeded.B!.run,
    leak: (id) => listWorkflowStepDependencies(db, id, { organizationId: A }),
    verdict: { hidden: nothing },
    own: () => listWorkflowStepDependencies(db, seeded.B!.run, { organizationId: B }),
    ownSees: found,
  },
  getJobPayloadByIdempotencyKey: {
    leak: () =>
      getJobPayloadByIdempotencyKey(db, {
        scope: { organizationId: A },
        jobType: "tenant.job",
        idempotencyKey: "key-b",
      }),
    verdict: { hidden: nothing },
    own: () =>
      getJobPayloadByIdempotencyKey(db, {
        scope: { organizationId: B },
        jobType: "tenant.job",
        idempotencyKey: "key-b",
      }),
    ownSees: (r) => expect(r).toMatchObject({ payload: { org: B } }),
  },
  getLatestJobPayloadForRun: {
    target: () => seeded.B!.runRef,
    leak: (id) => getLatestJobPayloadForRun(db, { scope: { organizationId: A }, jobType: "tenant.other", runId: id }),
    verdict: { hidden: nothing },
    own: () =>
      getLatestJobPayloadForRun(db, { scope: { organizationId: B }, jobType: "tenant.other", runId: seeded.B!.runRef }),
    ownSees: (r) => expect(r).toMatchObject({ payload: { org: B } }),
  },
  getLatestWorkflowRunByType: {
    leak: () => getLatestWorkflowRunByType(db, { scope: { organizationId: A }, workflowType: "tenant.flow" }),
    verdict: { hidden: (r) => onlyA([r as { organizationId: string | null }]) },
    own: () => getLatestWorkflowRunByType(db, { scope: { organizationId: B }, workflowType: "tenant.flow" }),
    ownSees: (r) => expect(r).toMatchObject({ organizationId: B }),
  },
  getWorkflowRunByIdempotencyKey: {
    leak: () =>
      getWorkflowRunByIdempotencyKey(db, {
        scope: { organizationId: A },
        workflowType: "tenant.flow",
        idempotencyKey: "run-b",
      }),
    verdict: { hidden: nothing },
    own: () =>
      getWorkflowRunByIdempotencyKey(db, {
        scope: { organizationId: B },
        workflowType: "tenant.flow",
        idempotencyKey: "run-b",
      }),
    ownSees: (r) => expect(r).toMatchObject({ id: seeded.B!.run }),
  },
  getWorkflowRunIdForJob: {
    target: () => seeded.B!.failedJob,
    leak: (id) => getWorkflowRunIdForJob(db, id, { scope: { organizationId: A } }),
    verdict: { hidden: nothing },
    own: () => getWorkflowRunIdForJob(db, seeded.B!.failedJob, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toBe(seeded.B!.failedRun),
  },
  readFinishedWorkflowRuns: {
    target: () => seeded.B!.failedRun,
    leak: (id) => readFinishedWorkflowRuns(db, { scope: { organizationId: A }, runIds: [id] }),
    verdict: { hidden: nothing },
    own: () => readFinishedWorkflowRuns(db, { scope: { organizationId: B }, runIds: [seeded.B!.failedRun] }),
    ownSees: (r) => expect((r as { id: string }[]).map((run) => run.id)).toEqual([seeded.B!.failedRun]),
  },
  countWorkflowRuns: {
    // A has 5 runs, B 6: each scope counts its own only.
    leak: () => countWorkflowRuns(db, { scope: { organizationId: A } }),
    verdict: { hidden: (r) => expect(r).toBe(5) },
    own: () => countWorkflowRuns(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toBe(6),
  },
  waitForWorkflowRun: {
    target: () => seeded.B!.failedRun,
    leak: (id) => waitForWorkflowRun(db, id, { scope: { organizationId: A }, timeoutMs: 5_000 }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => waitForWorkflowRun(db, seeded.B!.failedRun, { scope: { organizationId: B }, timeoutMs: 5_000 }),
    ownSees: (r) => expect(r).toMatchObject({ status: "COMPLETED_WITH_ERRORS" }),
  },
  listJobSchedules: {
    leak: () => listJobSchedules(db, { organizationId: A, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(r as { organizationId: string | null }[]) },
    own: () => listJobSchedules(db, { organizationId: B, limit: 1000 }),
    ownSees: (r) => expect((r as { name: string }[]).map((s) => s.name)).toContain(seeded.B!.schedule),
  },
  // Overview reads: A has 6 pending jobs (two of them steps'), B 9; each has two dead letters (a job's and a
  // step's) and one worker named after it.
  countJobsByStatus: {
    leak: () => countJobsByStatus(db, { scope: { organizationId: A } }),
    verdict: {
      hidden: (r) => expect((r as { byStatus: { PENDING: { count: number } } }).byStatus.PENDING.count).toBe(6),
    },
    own: () => countJobsByStatus(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { byStatus: { PENDING: { count: number } } }).byStatus.PENDING.count).toBe(9),
  },
  readQueueDepth: {
    leak: () => readQueueDepth(db, { scope: { organizationId: A } }),
    verdict: { hidden: (r) => expect(dueJobs(r)).toBe(6) },
    own: () => readQueueDepth(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(dueJobs(r)).toBe(9),
  },
  getJobThroughput: {
    leak: () => getJobThroughput(db, { scope: { organizationId: A } }),
    verdict: { hidden: (r) => expect(deadLettered(r)).toBe(2) },
    own: () => getJobThroughput(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(deadLettered(r)).toBe(2),
  },
  getOldestDueJob: {
    leak: () => getOldestDueJob(db, { scope: { organizationId: A } }),
    verdict: { hidden: (r) => expect((r as { jobId: string }).jobId).toBe(seeded.A!.pending) },
    own: () => getOldestDueJob(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { jobId: string }).jobId).toBe(seeded.B!.pending),
  },
  listRecentWorkers: {
    leak: () => listRecentWorkers(db, { scope: { organizationId: A } }),
    verdict: { hidden: (r) => expect((r as { workerId: string }[]).map((w) => w.workerId)).toEqual([`w-${A}`]) },
    own: () => listRecentWorkers(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { workerId: string }[]).map((w) => w.workerId)).toEqual([`w-${B}`]),
  },
  searchJobsAndRuns: {
    target: () => seeded.B!.pending,
    leak: (id) => searchJobsAndRuns(db, { query: id, scope: { organizationId: A }, limit: 10 }),
    verdict: { hidden: (r) => expect(r).toEqual({ jobs: [], runs: [] }) },
    own: () => searchJobsAndRuns(db, { query: seeded.B!.pending, scope: { organizationId: B }, limit: 10 }),
    ownSees: (r) => expect((r as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual([seeded.B!.pending]),
  },
  getJobWorkflowStep: {
    target: () => seeded.B!.runJob,
    leak: (id) => getJobWorkflowStep(db, id, { organizationId: A }),
    verdict: { hidden: nothing },
    own: () => getJobWorkflowStep(db, seeded.B!.runJob, { organizationId: B }),
    ownSees: (r) => expect(r).toEqual({ workflowRunId: seeded.B!.stepRun, stepKey: "job" }),
  },
  listLeasedJobs: {
    leak: () => listLeasedJobs(db, { scope: { organizationId: A }, limit: 100 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listLeasedJobs(db, { scope: { organizationId: B }, limit: 100 }),
    ownSees: (r) => expect(page(r).map((j) => j.id)).toEqual([seeded.B!.leasedJob]),
  },
  listDeadLetters: {
    leak: () => listDeadLetters(db, { scope: { organizationId: A }, limit: 100 }),
    verdict: { hidden: (r) => onlyA(page(r) as { organizationId: string | null }[]) },
    own: () => listDeadLetters(db, { scope: { organizationId: B }, limit: 100 }),
    ownSees: (r) =>
      expect((r as { items: { jobId: string }[] }).items.map((d) => d.jobId).sort()).toEqual(
        [seeded.B!.dead, seeded.B!.failedJob].sort(),
      ),
  },
  setJobScheduleActive: {
    target: () => seeded.B!.schedule,
    leak: (id) => setJobScheduleActive(db, id, false, { organizationId: A }),
    verdict: { hidden: (r) => expect(r).toBe(false) },
    own: () => setJobScheduleActive(db, seeded.B!.schedule, false, { organizationId: B }),
    ownSees: (r) => expect(r).toBe(true),
  },
  setJobScheduleNextFireAt: {
    target: () => seeded.B!.schedule,
    leak: (id) => setJobScheduleNextFireAt(db, id, new Date(0), { organizationId: A }),
    verdict: { hidden: (r) => expect(r).toBe(false) },
    own: () => setJobScheduleNextFireAt(db, seeded.B!.schedule, T0, { organizationId: B }),
    ownSees: (r) => expect(r).toBe(true),
  },
  // Schedule names are unique across organizations, so refusing the name necessarily says it is
  // taken; what must not happen is A overwriting B's schedule.
  upsertJobSchedule: {
    leak: () =>
      upsertJobSchedule(db, {
        name: seeded.B!.schedule,
        jobType: "tenant.job",
        organizationId: A,
        cronExpr: "* * * * * *",
        nextFireAt: new Date(0),
        payloadTemplate: { stolen: true },
      }),
    verdict: { refused: "job_schedule.name_taken" },
    own: () =>
      upsertJobSchedule(db, {
        name: seeded.B!.schedule,
        jobType: "tenant.job",
        organizationId: B,
        cronExpr: "0 0 0 * * *",
        nextFireAt: T0,
        payloadTemplate: { org: B },
      }),
    ownSees: (r) => expect(r).toMatchObject({ organizationId: B }),
  },
  getJobSchedule: {
    target: () => seeded.B!.schedule,
    leak: (name) => getJobSchedule(db, name, { organizationId: A }, { upcoming: 1 }),
    verdict: { hidden: nothing },
    own: () => getJobSchedule(db, seeded.B!.schedule, { organizationId: B }),
    ownSees: found,
  },
  backfillJobSchedule: {
    target: () => seeded.B!.schedule,
    leak: (name) =>
      backfillJobSchedule(db, { name, from: new Date(T0.getTime() - 2 * DAY), to: T0, now: T0 }, { organizationId: A }),
    verdict: { refused: "job_schedule.not_found" },
    own: () =>
      backfillJobSchedule(
        db,
        { name: seeded.B!.schedule, from: new Date(T0.getTime() - 2 * DAY), to: T0, now: T0 },
        { organizationId: B },
      ),
    ownSees: (r) => expect((r as { created: unknown[] }).created).toHaveLength(2),
  },
  cancelJob: {
    target: () => seeded.B!.pending,
    leak: (id) => cancelJob(db, { jobId: id, organizationId: A }),
    verdict: { refused: "job.not_found" },
    own: () => cancelJob(db, { jobId: seeded.B!.pending, organizationId: B }),
    ownSees: (r) => expect(r).toMatchObject({ status: "CANCELED" }),
  },
  requeueJob: {
    target: () => seeded.B!.dead,
    leak: (id) => requeueJob(db, { jobId: id, organizationId: A }),
    verdict: { refused: "job.not_found" },
    own: () => requeueJob(db, { jobId: seeded.B!.dead, organizationId: B }),
    ownSees: (r) => expect(r).toMatchObject({ status: "PENDING" }),
  },
  completeExternalWorkflowStep: {
    target: () => seeded.B!.run,
    leak: (id) =>
      completeExternalWorkflowStep(db, {
        workflowRunId: id,
        organizationId: A,
        stepKey: "gate",
        terminalStatus: "FAILED",
      }),
    verdict: { refused: "workflow.external_step_not_found" },
    own: () =>
      completeExternalWorkflowStep(db, {
        workflowRunId: seeded.B!.run,
        organizationId: B,
        stepKey: "gate",
        terminalStatus: "SUCCEEDED",
      }),
    ownSees: (r) => expect(r).toMatchObject({ status: "SUCCEEDED" }),
  },
  appendWorkflowSteps: {
    target: () => seeded.B!.run,
    leak: (id) =>
      appendWorkflowSteps(db, {
        workflowRunId: id,
        organizationId: A,
        mutationKey: "m1",
        appendWindowStepKey: "window",
        steps: [jobStep("stolen", "window")],
      }),
    verdict: { refused: "workflow.run_not_found" },
    own: () =>
      appendWorkflowSteps(db, {
        workflowRunId: seeded.B!.run,
        organizationId: B,
        mutationKey: "m1",
        appendWindowStepKey: "window",
        steps: [jobStep("extra", "window")],
      }),
    ownSees: (r) => expect(r).toMatchObject({ outcome: "APPENDED" }),
  },
  listWorkflowStepKeysForUpdate: {
    target: () => seeded.B!.run,
    leak: (id) => listWorkflowStepKeysForUpdate(db, id, { scope: { organizationId: A } }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => listWorkflowStepKeysForUpdate(db, seeded.B!.run, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toContain("gate"),
  },
  updateWorkflowStepAndPendingJobPayload: {
    target: () => seeded.B!.pendingRun,
    leak: (id) =>
      updateWorkflowStepAndPendingJobPayload(db, {
        scope: { organizationId: A },
        workflowRunId: id,
        stepId: seeded.B!.pendingStep,
        jobId: seeded.B!.pendingJob,
        payload: { stolen: true },
      }),
    verdict: { hidden: (r) => expect(r).toBe(false) },
    own: () =>
      updateWorkflowStepAndPendingJobPayload(db, {
        scope: { organizationId: B },
        workflowRunId: seeded.B!.pendingRun,
        stepId: seeded.B!.pendingStep,
        jobId: seeded.B!.pendingJob,
        payload: { org: B, updated: true },
      }),
    ownSees: (r) => expect(r).toBe(true),
  },
  insertJobLog: {
    target: () => seeded.B!.dead,
    leak: (id) =>
      insertJobLog(db, { scope: { organizationId: A }, jobId: id, runNumber: 1, level: "info", message: "from A" }),
    verdict: { refused: "job.not_found" },
    own: () =>
      insertJobLog(db, {
        scope: { organizationId: B },
        jobId: seeded.B!.dead,
        runNumber: 1,
        level: "info",
        message: "from B",
      }),
    ownSees: (r) => expect(r).toMatchObject({ jobId: seeded.B!.dead, message: "from B" }),
  },
  retryWorkflowRun: {
    target: () => seeded.B!.failedRun,
    leak: (id) => retryWorkflowRun(db, { workflowRunId: id, scope: { organizationId: A } }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => retryWorkflowRun(db, { workflowRunId: seeded.B!.failedRun, scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toMatchObject({ outcome: "RETRIED", workflowRun: { status: "RUNNING" } }),
  },
  cancelWorkflowRun: {
    target: () => seeded.B!.cancelRun,
    leak: (id) => cancelWorkflowRun(db, { workflowRunId: id, organizationId: A }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => cancelWorkflowRun(db, { workflowRunId: seeded.B!.cancelRun, organizationId: B }),
    ownSees: (r) => expect(r).toMatchObject({ status: "CANCELED" }),
  },
  // Enqueues take the organization as the scope of their idempotency key: A reusing a key of
  // B's creates A's own row instead of returning (or conflicting with) B's.
  enqueueJob: {
    leak: () => enqueueJob(db, { jobType: "tenant.job", organizationId: A, idempotencyKey: "key-b" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ created: true }) },
    own: () =>
      enqueueJob(db, { jobType: "tenant.job", organizationId: B, idempotencyKey: "key-b", payload: { org: B } }),
    ownSees: (r) => expect(r).toMatchObject({ created: false }),
  },
  enqueueJobs: {
    leak: () => enqueueJobs(db, [{ jobType: "tenant.job", organizationId: A, idempotencyKey: "key2-b", payload: 1 }]),
    verdict: { hidden: (r) => expect(r).toMatchObject([{ created: true }]) },
    own: () =>
      enqueueJobs(db, [{ jobType: "tenant.job", organizationId: B, idempotencyKey: "key2-b", payload: { org: B } }]),
    ownSees: (r) => expect(r).toMatchObject([{ created: false }]),
  },
  enqueueWorkflowRun: {
    leak: () => enqueueWorkflowRun(db, { ...runOf(A, "run-b"), metadata: { other: true } }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ created: true, organizationId: A }) },
    own: () => enqueueWorkflowRun(db, runOf(B, "run-b")),
    ownSees: (r) => expect(r).toMatchObject({ created: false, id: seeded.B!.run }),
  },
  // Bulk by filter, last: they change many rows. A's call sees A's jobs only; B's own call finds
  // B's (the `tenant.other` jobs: a plain one and a workflow step's, both pending).
  countJobs: {
    leak: () => countJobs(db, { scope: { organizationId: A }, jobType: "tenant.other" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ matched: 2, cancelable: 2 }) },
    own: () => countJobs(db, { scope: { organizationId: B }, jobType: "tenant.other" }),
    ownSees: (r) => expect(r).toMatchObject({ matched: 2, cancelable: 2 }),
  },
  requeueJobs: {
    leak: () => requeueJobs(db, { scope: { organizationId: A }, jobType: "tenant.job" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ count: 0 }) },
    // B's pending job that `cancelJob` canceled above.
    own: () => requeueJobs(db, { scope: { organizationId: B }, jobType: "tenant.job" }),
    ownSees: (r) => expect(r).toMatchObject({ count: 1 }),
  },
  cancelJobs: {
    leak: () => cancelJobs(db, { scope: { organizationId: A }, jobType: "tenant.other" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ count: 2 }) },
    own: () => cancelJobs(db, { scope: { organizationId: B }, jobType: "tenant.other" }),
    ownSees: (r) => expect(r).toMatchObject({ count: 2 }),
  },
  // Retention last: it deletes what the mutations above finished. A clock a year ahead makes
  // every finished row old enough; A's purge deletes A's own finished rows and none of B's.
  purgeFinished: {
    leak: () => purgeFinished(db, { scope: { organizationId: A }, olderThan: 0, now: YEAR_AHEAD }),
    verdict: { hidden: (r) => expect((r as { jobs: number }).jobs).toBeGreaterThan(0) },
    own: () => purgeFinished(db, { scope: { organizationId: B }, olderThan: 0, now: YEAR_AHEAD }),
    ownSees: (r) => expect((r as { jobs: number }).jobs).toBeGreaterThan(0),
  },
  purgeWorkflowRuns: {
    leak: () => purgeWorkflowRuns(db, { scope: { organizationId: A }, olderThan: 0, now: YEAR_AHEAD }),
    verdict: { hidden: (r) => expect((r as { runs: number }).runs).toBeGreaterThan(0) },
    own: () => purgeWorkflowRuns(db, { scope: { organizationId: B }, olderThan: 0, now: YEAR_AHEAD }),
    ownSees: (r) => expect((r as { runs: number }).runs).toBeGreaterThan(0),
  },
};

/**
 * Exported store functions whose parameters mention an organization but are not a scope a
 * tenant can aim: they take a record already read.
 */
const NOT_A_SCOPE: Record<string, string> = {};

/** Outside the store: the catalog enqueues through `enqueueJob` with the same idempotency scope. */
const catalog = new JobCatalog().job("tenant.job", async () => {});

async function settle(call: () => Promise<unknown>): Promise<{ result?: unknown; error?: unknown }> {
  try {
    return { result: await call() };
  } catch (error) {
    return { error };
  }
}

/** An outcome as a client sees it, with the id it was asked about blanked out. */
function normalized(outcome: { result?: unknown; error?: unknown }, id: string): string {
  const seen =
    outcome.error instanceof RunledgerError ? { error: outcome.error.toJSON() } : { result: outcome.result ?? null };
  return JSON.stringify(seen).replaceAll(id, "<id>");
}

/**
 * Names of store functions whose parameter list mentions `organizationId` or a type that has one:
 * `OrganizationScope` (`{ organizationId } | ALL_ORGANIZATIONS`), and any type holding such a
 * type, found to a fixed point (an input type with a `scope: OrganizationScope` field counts).
 */
function scopedStoreFunctions(): string[] {
  const files = ["src/store", "src/core"].flatMap((dir) =>
    readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(dir, f), "utf8")),
  );
  const text = files.join("\n");
  const bodies = new Map<string, string>();
  for (const match of text.matchAll(/export (?:interface|type) (\w+)([^{=]*)[{=]/g)) {
    // The heading too: `interface X extends Scoped { … }` holds a scope through what it extends.
    bodies.set(match[1]!, match[2]! + balanced(text, text.indexOf(match[0]) + match[0].length - 1, "{", "}"));
  }
  const scopedTypes = new Set<string>();
  const mentionsScope = (source: string) =>
    /\borganizationId\b/.test(source) || [...scopedTypes].some((type) => new RegExp(`\\b${type}\\b`).test(source));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, body] of bodies) {
      if (!scopedTypes.has(name) && mentionsScope(body)) {
        scopedTypes.add(name);
        grew = true;
      }
    }
  }
  const names = new Set<string>();
  for (const match of text.matchAll(/export (?:async )?function (\w+)(?:<[^(]*>)?\(/g)) {
    const params = balanced(text, text.indexOf(match[0]) + match[0].length - 1, "(", ")");
    if (mentionsScope(params)) names.add(match[1]!);
  }
  return [...names].filter((name) => typeof (store as Record<string, unknown>)[name] === "function").sort();
}

/** The text from `open` at `start` to its matching close. */
function balanced(text: string, start: number, open: string, close: string): string {
  if (text[start] !== open) return text.slice(start, text.indexOf("\n", start));
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === open) depth++;
    else if (text[i] === close && --depth === 0) return text.slice(start, i + 1);
  }
  return text.slice(start);
}

describe("tenant isolation", () => {
  it("covers every organization-scoped store API", () => {
    expect(scopedStoreFunctions()).toEqual(Object.keys({ ...SCOPED, ...NOT_A_SCOPE }).sort());
  });

  it.each(Object.entries(SCOPED))("%s for A neither shows nor changes B's rows", async (_name, entry) => {
    const before = await rowsOf(B);
    const target = entry.target?.() ?? "";
    const outcome = await settle(() => entry.leak(target));
    if ("refused" in entry.verdict) {
      expect(outcome.error).toBeInstanceOf(RunledgerError);
      expect((outcome.error as RunledgerError).code).toBe(entry.verdict.refused);
    } else {
      expect(outcome.error).toBeUndefined();
      entry.verdict.hidden(outcome.result);
    }
    expect(JSON.stringify(outcome.result ?? null)).not.toContain(B);
    expect(await rowsOf(B)).toEqual(before);
    // B's id gets exactly the answer an id that exists nowhere gets: existence does not leak.
    if (entry.target !== undefined) {
      const ghost = entry.target().startsWith("nightly-") ? "nightly-nobody" : newId();
      expect(normalized(outcome, target)).toEqual(normalized(await settle(() => entry.leak(ghost)), ghost));
    }
    entry.ownSees(await entry.own());
  });

  it("enqueueJob for A with B's job key creates A's own job and leaves B's pending job alone", async () => {
    const own = await enqueueJob(db, {
      jobType: "tenant.job",
      organizationId: B,
      payload: { org: B },
      jobKey: { key: "key-b-job" },
    });
    const before = await rowsOf(B);
    const other = await enqueueJob(db, {
      jobType: "tenant.job",
      organizationId: A,
      payload: { stolen: true },
      jobKey: { key: "key-b-job" },
    });
    expect(other.created).toBe(true);
    expect(other.id).not.toBe(own.id);
    expect(await rowsOf(B)).toEqual(before);
  });

  it("catalog.enqueue for A with B's idempotency key creates A's own job", async () => {
    const before = await rowsOf(B);
    const created = await catalog.enqueue(
      db,
      "tenant.job",
      { other: true },
      { organizationId: A, idempotencyKey: "key-b-catalog" },
    );
    await enqueueJob(db, { jobType: "tenant.job", organizationId: B, idempotencyKey: "key-b-catalog" });
    const again = await catalog.enqueue(
      db,
      "tenant.job",
      { other: true },
      { organizationId: A, idempotencyKey: "key-b-catalog" },
    );
    expect(again).toEqual({ id: created.id, created: false });
    expect((await getJobById(db, created.id))!.organizationId).toBe(A);
    const after = await rowsOf(B);
    expect(after.job_queue!.length).toBe(before.job_queue!.length + 1);
  });
});
