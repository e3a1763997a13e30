import { type SQL, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  type ErrorCode,
  newId,
  type OrganizationScope,
  RunledgerError,
  type WorkflowStepEnqueue,
} from "../../src/core/index.ts";
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
  type RunledgerDb,
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
import { defineJob, runSteps } from "../support/factories.ts";
import { type ListedScopedApi, SCOPED_STORE_APIS } from "../support/scoped-apis.ts";

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
  const [pendingStep] = await runSteps(db, pendingRun);
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
  const runJob = (await runSteps(db, stepRun.id))[0]!.jobId!;
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
  /** A's call (`scope` is A's), aimed at `target` when there is one, on `executor` (default `db`). */
  leak: (id: string, scope: OrganizationScope, executor?: RunledgerDb) => Promise<unknown>;
  verdict: Verdict;
  /** The same call for B: it must see (or change) the row A could not, so the test can fail. */
  own: () => Promise<unknown>;
  /** What `own` must return; the row A could not see. */
  ownSees: (result: unknown) => void;
}

/** The rows of an answer: a page's items, a list, or a single row. */
const rowsIn = (r: unknown): unknown[] =>
  r === null ? [] : Array.isArray(r) ? r : typeof r === "object" && "items" in r ? (r.items as unknown[]) : [r];
const nothing = (result: unknown) => expect(rowsIn(result)).toEqual([]);
const found = (result: unknown) => expect(rowsIn(result).length).toBeGreaterThan(0);
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

/**
 * Store functions that take an organization as data, not as a scope: the organization a new row
 * is created in (which is also the scope of its idempotency key or name). A tenant cannot aim
 * them at another tenant's rows either, so they are run across tenants with the scoped ones.
 */
const ORGANIZATION_DATA = ["enqueueJob", "enqueueJobs", "enqueueWorkflowRun", "upsertJobSchedule"] as const;

/**
 * Every organization-scoped API of `runledger/store` by name, and the `ORGANIZATION_DATA` ones:
 * the keys are exactly `SCOPED_STORE_APIS` — the functions whose parameter types hold an
 * `OrganizationScope` (`scoped-apis.test-d.ts`) — and those. Reads first: mutations below use
 * B's rows up.
 */
const SCOPED = {
  getJobById: {
    target: () => seeded.B!.pending,
    leak: (id, scope, executor = db) => getJobById(executor, id, scope),
    verdict: { hidden: nothing },
    own: () => getJobById(db, seeded.B!.pending, { organizationId: B }),
    ownSees: found,
  },
  listJobs: {
    leak: (_id, scope, executor = db) => listJobs(executor, { scope, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listJobs(db, { scope: { organizationId: B }, limit: 1000 }),
    ownSees: (r) => expect(page(r).map((j) => j.id)).toContain(seeded.B!.pending),
  },
  listJobEvents: {
    target: () => seeded.B!.dead,
    leak: (id, scope, executor = db) => listJobEvents(executor, { jobId: id, scope, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobEvents(db, { jobId: seeded.B!.dead, scope: { organizationId: B }, limit: 100 }),
    ownSees: found,
  },
  listJobAttempts: {
    target: () => seeded.B!.dead,
    leak: (id, scope, executor = db) => listJobAttempts(executor, { jobId: id, scope, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobAttempts(db, { jobId: seeded.B!.dead, scope: { organizationId: B }, limit: 100 }),
    ownSees: found,
  },
  listJobLogs: {
    target: () => seeded.B!.dead,
    leak: (id, scope, executor = db) => listJobLogs(executor, { jobId: id, scope, limit: 100 }),
    verdict: { hidden: nothing },
    own: () => listJobLogs(db, { jobId: seeded.B!.dead, scope: { organizationId: B }, limit: 100 }),
    ownSees: found,
  },
  getJobMetrics: {
    // A has 3 pending tenant.job jobs, B has 6: each scope counts its own only.
    leak: (_id, scope, executor = db) => getJobMetrics(executor, { scope, jobType: "tenant.job" }),
    verdict: { hidden: (r) => expect(pendingCount(r)).toBe(3) },
    own: () => getJobMetrics(db, { scope: { organizationId: B }, jobType: "tenant.job" }),
    ownSees: (r) => expect(pendingCount(r)).toBe(6),
  },
  getWorkflowRunById: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) => getWorkflowRunById(executor, id, scope),
    verdict: { hidden: nothing },
    own: () => getWorkflowRunById(db, seeded.B!.run, { organizationId: B }),
    ownSees: found,
  },
  listWorkflowRuns: {
    leak: (_id, scope, executor = db) => listWorkflowRuns(executor, { scope, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listWorkflowRuns(db, { scope: { organizationId: B }, limit: 1000 }),
    ownSees: (r) => expect(page(r).map((x) => x.id)).toContain(seeded.B!.run),
  },
  listWorkflowSteps: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) => listWorkflowSteps(executor, { workflowRunId: id, scope, limit: 1000 }),
    verdict: { hidden: nothing },
    own: () => listWorkflowSteps(db, { workflowRunId: seeded.B!.run, scope: { organizationId: B }, limit: 1000 }),
    ownSees: found,
  },
  listWorkflowStepDependencies: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) =>
      listWorkflowStepDependencies(executor, { workflowRunId: id, scope, limit: 1000 }),
    verdict: { hidden: nothing },
    own: () =>
      listWorkflowStepDependencies(db, { workflowRunId: seeded.B!.run, scope: { organizationId: B }, limit: 1000 }),
    ownSees: found,
  },
  getJobPayloadByIdempotencyKey: {
    leak: (_id, scope, executor = db) =>
      getJobPayloadByIdempotencyKey(executor, {
        scope,
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
    leak: (id, scope, executor = db) =>
      getLatestJobPayloadForRun(executor, { scope, jobType: "tenant.other", runId: id }),
    verdict: { hidden: nothing },
    own: () =>
      getLatestJobPayloadForRun(db, { scope: { organizationId: B }, jobType: "tenant.other", runId: seeded.B!.runRef }),
    ownSees: (r) => expect(r).toMatchObject({ payload: { org: B } }),
  },
  getLatestWorkflowRunByType: {
    leak: (_id, scope, executor = db) => getLatestWorkflowRunByType(executor, { scope, workflowType: "tenant.flow" }),
    verdict: { hidden: (r) => onlyA([r as { organizationId: string | null }]) },
    own: () => getLatestWorkflowRunByType(db, { scope: { organizationId: B }, workflowType: "tenant.flow" }),
    ownSees: (r) => expect(r).toMatchObject({ organizationId: B }),
  },
  getWorkflowRunByIdempotencyKey: {
    leak: (_id, scope, executor = db) =>
      getWorkflowRunByIdempotencyKey(executor, {
        scope,
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
    leak: (id, scope, executor = db) => getWorkflowRunIdForJob(executor, id, { scope }),
    verdict: { hidden: nothing },
    own: () => getWorkflowRunIdForJob(db, seeded.B!.failedJob, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toBe(seeded.B!.failedRun),
  },
  readFinishedWorkflowRuns: {
    target: () => seeded.B!.failedRun,
    leak: (id, scope, executor = db) => readFinishedWorkflowRuns(executor, { scope, runIds: [id] }),
    verdict: { hidden: nothing },
    own: () => readFinishedWorkflowRuns(db, { scope: { organizationId: B }, runIds: [seeded.B!.failedRun] }),
    ownSees: (r) => expect((r as { id: string }[]).map((run) => run.id)).toEqual([seeded.B!.failedRun]),
  },
  countWorkflowRuns: {
    // A has 5 runs, B 6: each scope counts its own only.
    leak: (_id, scope, executor = db) => countWorkflowRuns(executor, { scope }),
    verdict: { hidden: (r) => expect(r).toBe(5) },
    own: () => countWorkflowRuns(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toBe(6),
  },
  waitForWorkflowRun: {
    target: () => seeded.B!.failedRun,
    leak: (id, scope, executor = db) => waitForWorkflowRun(executor, id, { scope, timeoutMs: 5_000 }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => waitForWorkflowRun(db, seeded.B!.failedRun, { scope: { organizationId: B }, timeoutMs: 5_000 }),
    ownSees: (r) => expect(r).toMatchObject({ status: "COMPLETED_WITH_ERRORS" }),
  },
  listJobSchedules: {
    leak: (_id, scope, executor = db) => listJobSchedules(executor, { scope, limit: 1000 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listJobSchedules(db, { scope: { organizationId: B }, limit: 1000 }),
    ownSees: (r) => expect((r as { items: { name: string }[] }).items.map((s) => s.name)).toContain(seeded.B!.schedule),
  },
  // Overview reads: A has 6 pending jobs (two of them steps'), B 9; each has two dead letters (a job's and a
  // step's) and one worker named after it.
  countJobsByStatus: {
    leak: (_id, scope, executor = db) => countJobsByStatus(executor, { scope }),
    verdict: {
      hidden: (r) => expect((r as { byStatus: { PENDING: { count: number } } }).byStatus.PENDING.count).toBe(6),
    },
    own: () => countJobsByStatus(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { byStatus: { PENDING: { count: number } } }).byStatus.PENDING.count).toBe(9),
  },
  readQueueDepth: {
    leak: (_id, scope, executor = db) => readQueueDepth(executor, { scope }),
    verdict: { hidden: (r) => expect(dueJobs(r)).toBe(6) },
    own: () => readQueueDepth(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(dueJobs(r)).toBe(9),
  },
  getJobThroughput: {
    leak: (_id, scope, executor = db) => getJobThroughput(executor, { scope }),
    verdict: { hidden: (r) => expect(deadLettered(r)).toBe(2) },
    own: () => getJobThroughput(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect(deadLettered(r)).toBe(2),
  },
  getOldestDueJob: {
    leak: (_id, scope, executor = db) => getOldestDueJob(executor, { scope }),
    verdict: { hidden: (r) => expect((r as { jobId: string }).jobId).toBe(seeded.A!.pending) },
    own: () => getOldestDueJob(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { jobId: string }).jobId).toBe(seeded.B!.pending),
  },
  listRecentWorkers: {
    leak: (_id, scope, executor = db) => listRecentWorkers(executor, { scope }),
    verdict: { hidden: (r) => expect((r as { workerId: string }[]).map((w) => w.workerId)).toEqual([`w-${A}`]) },
    own: () => listRecentWorkers(db, { scope: { organizationId: B } }),
    ownSees: (r) => expect((r as { workerId: string }[]).map((w) => w.workerId)).toEqual([`w-${B}`]),
  },
  searchJobsAndRuns: {
    target: () => seeded.B!.pending,
    leak: (id, scope, executor = db) => searchJobsAndRuns(executor, { query: id, scope, limit: 10 }),
    verdict: { hidden: (r) => expect(r).toEqual({ jobs: [], runs: [] }) },
    own: () => searchJobsAndRuns(db, { query: seeded.B!.pending, scope: { organizationId: B }, limit: 10 }),
    ownSees: (r) => expect((r as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual([seeded.B!.pending]),
  },
  getJobWorkflowStep: {
    target: () => seeded.B!.runJob,
    leak: (id, scope, executor = db) => getJobWorkflowStep(executor, id, scope),
    verdict: { hidden: nothing },
    own: () => getJobWorkflowStep(db, seeded.B!.runJob, { organizationId: B }),
    ownSees: (r) => expect(r).toEqual({ workflowRunId: seeded.B!.stepRun, stepKey: "job" }),
  },
  listLeasedJobs: {
    leak: (_id, scope, executor = db) => listLeasedJobs(executor, { scope, limit: 100 }),
    verdict: { hidden: (r) => onlyA(page(r)) },
    own: () => listLeasedJobs(db, { scope: { organizationId: B }, limit: 100 }),
    ownSees: (r) => expect(page(r).map((j) => j.id)).toEqual([seeded.B!.leasedJob]),
  },
  listDeadLetters: {
    leak: (_id, scope, executor = db) => listDeadLetters(executor, { scope, limit: 100 }),
    verdict: { hidden: (r) => onlyA(page(r) as { organizationId: string | null }[]) },
    own: () => listDeadLetters(db, { scope: { organizationId: B }, limit: 100 }),
    ownSees: (r) =>
      expect((r as { items: { jobId: string }[] }).items.map((d) => d.jobId).sort()).toEqual(
        [seeded.B!.dead, seeded.B!.failedJob].sort(),
      ),
  },
  setJobScheduleActive: {
    target: () => seeded.B!.schedule,
    leak: (id, scope, executor = db) => setJobScheduleActive(executor, id, false, scope),
    verdict: { hidden: (r) => expect(r).toBe(false) },
    own: () => setJobScheduleActive(db, seeded.B!.schedule, false, { organizationId: B }),
    ownSees: (r) => expect(r).toBe(true),
  },
  setJobScheduleNextFireAt: {
    target: () => seeded.B!.schedule,
    leak: (id, scope, executor = db) => setJobScheduleNextFireAt(executor, id, new Date(0), scope),
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
    leak: (name, scope, executor = db) => getJobSchedule(executor, name, scope, { upcoming: 1 }),
    verdict: { hidden: nothing },
    own: () => getJobSchedule(db, seeded.B!.schedule, { organizationId: B }),
    ownSees: found,
  },
  backfillJobSchedule: {
    target: () => seeded.B!.schedule,
    leak: (name, scope, executor = db) =>
      backfillJobSchedule(executor, { name, from: new Date(T0.getTime() - 2 * DAY), to: T0, now: T0 }, scope),
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
    leak: (id, scope, executor = db) => cancelJob(executor, { jobId: id, scope }),
    verdict: { refused: "job.not_found" },
    own: () => cancelJob(db, { jobId: seeded.B!.pending, scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toMatchObject({ status: "CANCELED" }),
  },
  requeueJob: {
    target: () => seeded.B!.dead,
    leak: (id, scope, executor = db) => requeueJob(executor, { jobId: id, scope }),
    verdict: { refused: "job.not_found" },
    own: () => requeueJob(db, { jobId: seeded.B!.dead, scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toMatchObject({ status: "PENDING" }),
  },
  completeExternalWorkflowStep: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) =>
      completeExternalWorkflowStep(executor, {
        workflowRunId: id,
        scope,
        stepKey: "gate",
        terminalStatus: "FAILED",
      }),
    verdict: { refused: "workflow.external_step_not_found" },
    own: () =>
      completeExternalWorkflowStep(db, {
        workflowRunId: seeded.B!.run,
        scope: { organizationId: B },
        stepKey: "gate",
        terminalStatus: "SUCCEEDED",
      }),
    ownSees: (r) => expect(r).toMatchObject({ status: "SUCCEEDED" }),
  },
  appendWorkflowSteps: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) =>
      appendWorkflowSteps(executor, {
        workflowRunId: id,
        scope,
        mutationKey: "m1",
        appendWindowStepKey: "window",
        steps: [jobStep("stolen", "window")],
      }),
    verdict: { refused: "workflow.run_not_found" },
    own: () =>
      appendWorkflowSteps(db, {
        workflowRunId: seeded.B!.run,
        scope: { organizationId: B },
        mutationKey: "m1",
        appendWindowStepKey: "window",
        steps: [jobStep("extra", "window")],
      }),
    ownSees: (r) => expect(r).toMatchObject({ outcome: "APPENDED" }),
  },
  listWorkflowStepKeysForUpdate: {
    target: () => seeded.B!.run,
    leak: (id, scope, executor = db) => listWorkflowStepKeysForUpdate(executor, id, { scope }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => listWorkflowStepKeysForUpdate(db, seeded.B!.run, { scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toContain("gate"),
  },
  updateWorkflowStepAndPendingJobPayload: {
    target: () => seeded.B!.pendingRun,
    leak: (id, scope, executor = db) =>
      updateWorkflowStepAndPendingJobPayload(executor, {
        scope,
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
    leak: (id, scope, executor = db) =>
      insertJobLog(executor, { scope, jobId: id, runNumber: 1, level: "info", message: "from A" }),
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
    leak: (id, scope, executor = db) => retryWorkflowRun(executor, { workflowRunId: id, scope }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => retryWorkflowRun(db, { workflowRunId: seeded.B!.failedRun, scope: { organizationId: B } }),
    ownSees: (r) => expect(r).toMatchObject({ outcome: "RETRIED", workflowRun: { status: "RUNNING" } }),
  },
  cancelWorkflowRun: {
    target: () => seeded.B!.cancelRun,
    leak: (id, scope, executor = db) => cancelWorkflowRun(executor, { workflowRunId: id, scope }),
    verdict: { refused: "workflow.run_not_found" },
    own: () => cancelWorkflowRun(db, { workflowRunId: seeded.B!.cancelRun, scope: { organizationId: B } }),
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
    leak: (_id, scope, executor = db) => countJobs(executor, { scope, jobType: "tenant.other" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ matched: 2, cancelable: 2 }) },
    own: () => countJobs(db, { scope: { organizationId: B }, jobType: "tenant.other" }),
    ownSees: (r) => expect(r).toMatchObject({ matched: 2, cancelable: 2 }),
  },
  requeueJobs: {
    leak: (_id, scope, executor = db) => requeueJobs(executor, { scope, jobType: "tenant.job" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ count: 0 }) },
    // B's pending job that `cancelJob` canceled above.
    own: () => requeueJobs(db, { scope: { organizationId: B }, jobType: "tenant.job" }),
    ownSees: (r) => expect(r).toMatchObject({ count: 1 }),
  },
  cancelJobs: {
    leak: (_id, scope, executor = db) => cancelJobs(executor, { scope, jobType: "tenant.other" }),
    verdict: { hidden: (r) => expect(r).toMatchObject({ count: 2 }) },
    own: () => cancelJobs(db, { scope: { organizationId: B }, jobType: "tenant.other" }),
    ownSees: (r) => expect(r).toMatchObject({ count: 2 }),
  },
  // Retention last: it deletes what the mutations above finished. A clock a year ahead makes
  // every finished row old enough; A's purge deletes A's own finished rows and none of B's.
  purgeFinished: {
    leak: (_id, scope, executor = db) => purgeFinished(executor, { scope, olderThan: 0, now: YEAR_AHEAD }),
    verdict: { hidden: (r) => expect((r as { jobs: number }).jobs).toBeGreaterThan(0) },
    own: () => purgeFinished(db, { scope: { organizationId: B }, olderThan: 0, now: YEAR_AHEAD }),
    ownSees: (r) => expect((r as { jobs: number }).jobs).toBeGreaterThan(0),
  },
  purgeWorkflowRuns: {
    leak: (_id, scope, executor = db) => purgeWorkflowRuns(executor, { scope, olderThan: 0, now: YEAR_AHEAD }),
    verdict: { hidden: (r) => expect((r as { runs: number }).runs).toBeGreaterThan(0) },
    own: () => purgeWorkflowRuns(db, { scope: { organizationId: B }, olderThan: 0, now: YEAR_AHEAD }),
    ownSees: (r) => expect((r as { runs: number }).runs).toBeGreaterThan(0),
  },
} satisfies Record<ListedScopedApi | (typeof ORGANIZATION_DATA)[number], Entry>;

/** Values an untyped caller might pass for a scope that are not one. */
const NOT_A_SCOPE: unknown[] = [
  undefined,
  null,
  {},
  { organizationId: undefined },
  { organizationId: null },
  { allOrganizations: false },
  { allOrganizations: "true" },
  { organizationId: A, allOrganizations: true },
  A,
];

/** `db` behind a tripwire: `touched` lists every property a call read of it (none: no statement ran). */
function tripwire(): { executor: RunledgerDb; touched: string[] } {
  const touched: string[] = [];
  const executor = new Proxy(db, {
    get(target, property, receiver) {
      touched.push(String(property));
      return Reflect.get(target, property, receiver);
    },
  });
  return { executor, touched };
}

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

describe("tenant isolation", () => {
  it("covers every organization-scoped store API, each an exported function", () => {
    expect(Object.keys(SCOPED).sort()).toEqual([...SCOPED_STORE_APIS, ...ORGANIZATION_DATA].sort());
    for (const name of Object.keys(SCOPED)) expect(typeof (store as Record<string, unknown>)[name]).toBe("function");
  });

  // From an untyped caller: no scope, or something that is not one, is `scope.required` before
  // the executor (behind a tripwire) is touched at all, and changes nothing.
  it("the tripwire sees a scoped call use the database", async () => {
    const { executor, touched } = tripwire();
    expect(await SCOPED.getJobById.leak(seeded.A!.pending, { organizationId: A }, executor)).not.toBeNull();
    expect(touched.length).toBeGreaterThan(0);
  });

  it.each(SCOPED_STORE_APIS)("%s without a scope is scope.required, reading and writing nothing", async (name) => {
    const entry: Entry = SCOPED[name];
    const target = entry.target?.() ?? newId();
    const before = { a: await rowsOf(A), b: await rowsOf(B) };
    for (const missing of NOT_A_SCOPE) {
      const { executor, touched } = tripwire();
      const outcome = await settle(() => entry.leak(target, missing as OrganizationScope, executor));
      expect(outcome.error, `${name} with ${String(JSON.stringify(missing))}`).toBeInstanceOf(RunledgerError);
      expect((outcome.error as RunledgerError).code).toBe("scope.required");
      expect(touched, `${name} used the database before refusing`).toEqual([]);
    }
    expect({ a: await rowsOf(A), b: await rowsOf(B) }).toEqual(before);
  });

  // Step-level organizations: a step belongs to its run's organization. A step naming another one
  // (which would put a job in B's scope, where B could cancel A's step) is refused, at enqueue
  // and at append, before anything is written; a step naming none runs in its run's.
  it("a step of another organization is refused at enqueue and at append; steps inherit their run's", async () => {
    const before = { a: await rowsOf(A), b: await rowsOf(B) };
    const stepOfB = { ...jobStep("stolen", "window"), organizationId: B };
    await expect(
      enqueueWorkflowRun(db, { ...runOf(A), steps: [step("gate"), step("window"), stepOfB] }),
    ).rejects.toMatchObject({ code: "workflow.step_organization_mismatch" });
    await expect(
      appendWorkflowSteps(db, {
        scope: { organizationId: A },
        workflowRunId: seeded.A!.run,
        mutationKey: "steal",
        appendWindowStepKey: "window",
        steps: [stepOfB],
      }),
    ).rejects.toMatchObject({ code: "workflow.step_organization_mismatch" });
    expect({ a: await rowsOf(A), b: await rowsOf(B) }).toEqual(before);
    const [runStep] = await runSteps(db, seeded.A!.stepRun);
    expect((await getJobById(db, runStep!.jobId!, { organizationId: A }))?.organizationId).toBe(A);
    expect(await getJobById(db, runStep!.jobId!, { organizationId: B })).toBeNull();
  });

  it.each(Object.entries(SCOPED))("%s for A neither shows nor changes B's rows", async (_name, entry: Entry) => {
    const before = await rowsOf(B);
    const target = entry.target?.() ?? "";
    const outcome = await settle(() => entry.leak(target, { organizationId: A }));
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
      expect(normalized(outcome, target)).toEqual(
        normalized(await settle(() => entry.leak(ghost, { organizationId: A })), ghost),
      );
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
    expect((await getJobById(db, created.id, ALL_ORGANIZATIONS))!.organizationId).toBe(A);
    const after = await rowsOf(B);
    expect(after.job_queue!.length).toBe(before.job_queue!.length + 1);
  });
});
