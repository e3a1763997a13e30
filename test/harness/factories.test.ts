import { describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  type JobStatus,
  WorkflowStepEnqueueBuilder as Step,
  WorkflowDagBuilder,
  WorkflowRunEnqueueBuilder,
} from "../../src/core/index.ts";
import {
  cancelJob,
  type Executor,
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getWorkflowRunById,
  insertJobDefinitionIfMissing,
  listJobAttempts,
  listJobEvents,
} from "../../src/store/index.ts";
import {
  claimRunnableJobs,
  completeJobFailure,
  completeJobSuccess,
  type LeaseIdentity,
} from "../../src/store/worker.ts";
import { FACTORY_WORKER_ID, insertJob, insertWorkflowRun } from "../../src/testing/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { runSteps } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase();

const FAILURE = { code: "testing.failed", message: "Failed by a test factory." };
let types = 0;
/** A job type no other test enqueues, so a real claim of it takes exactly the job at hand. */
async function freshType(): Promise<string> {
  const jobType = `factory.reference.${++types}`;
  await insertJobDefinitionIfMissing(db, { jobType });
  return jobType;
}

/** Claim the one job of `jobType` as the worker does, once it is due (a retry is due 1 ms after its failure). */
async function claim(jobType: string): Promise<LeaseIdentity> {
  return waitFor(
    async () =>
      (
        await claimRunnableJobs(db, {
          workerId: FACTORY_WORKER_ID,
          leaseSeconds: 60,
          limit: 1,
          jobTypes: [jobType],
          markRunning: true,
        })
      )[0],
    { everyMs: 1, timeoutMs: 5_000, what: `a due ${jobType} job` },
  );
}

/** The same job made by the real path: enqueue, claim, then complete, fail or cancel. */
async function realJob(status: JobStatus, failedAttempts = 0): Promise<string> {
  const jobType = await freshType();
  const { id } = await enqueueJob(db, { jobType });
  for (let i = 0; i < failedAttempts; i++) {
    await completeJobFailure(db, { lease: await claim(jobType), kind: "RETRYABLE", ...FAILURE, retryDelayMs: 1 });
  }
  if (status === "LEASED") await claim(jobType);
  if (status === "SUCCEEDED") await completeJobSuccess(db, { lease: await claim(jobType) });
  if (status === "DEAD_LETTERED") {
    await completeJobFailure(db, { lease: await claim(jobType), kind: "TERMINAL", ...FAILURE });
  }
  if (status === "CANCELED") await cancelJob(db, { jobId: id, scope: ALL_ORGANIZATIONS });
  return id;
}

/** Everything the reads tell about a job, without what differs between two jobs (ids, times, type). */
async function story(executor: Executor, id: string) {
  const job = (await getJobById(executor, id, ALL_ORGANIZATIONS))!;
  const events = (await listJobEvents(executor, { jobId: id, scope: ALL_ORGANIZATIONS, limit: 100 })).items;
  const attempts = (await listJobAttempts(executor, { jobId: id, scope: ALL_ORGANIZATIONS, limit: 100 })).items;
  const set = (value: unknown) => value !== null && value !== undefined;
  return {
    job: {
      status: job.status,
      runNumber: job.runNumber,
      attempt: job.attempt,
      stage: job.stage,
      workerId: job.workerId,
      leased: set(job.leaseExpiresAt),
      heartbeat: set(job.lastHeartbeatAt),
      started: set(job.startedAt),
      finished: set(job.finishedAt),
      statusReason: job.statusReason,
      lastErrorCode: job.lastErrorCode,
      lastErrorMessage: job.lastErrorMessage,
    },
    events: events.map((e) => ({
      eventType: e.eventType,
      runNumber: e.runNumber,
      attempt: e.attempt,
      stage: e.stage,
      progress: [e.progressDone, e.progressTotal],
      payload: Object.fromEntries(
        Object.entries(e.payload).map(([key, value]) => [
          key,
          key === "job_type"
            ? "(type)"
            : typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)
              ? "(time)"
              : value,
        ]),
      ),
    })),
    eventIdsAscend: events.every((e, i) => i === 0 || e.id > events[i - 1]!.id),
    attempts: attempts.map((a) => ({
      runNumber: a.runNumber,
      attempt: a.attempt,
      workerId: a.workerId,
      finished: set(a.finishedAt),
      outcome: a.outcome,
      errorCode: a.errorCode,
      errorMessage: a.errorMessage,
      retryDelayMs: a.retryDelayMs,
      claimOrigin: a.claimOrigin,
      executionStarted: set(a.executionStartedPersistedAt),
    })),
  };
}

describe("insertJob", () => {
  const cases: [JobStatus, number][] = [
    ["PENDING", 0],
    ["LEASED", 0],
    ["SUCCEEDED", 0],
    ["DEAD_LETTERED", 0],
    ["CANCELED", 0],
    ["PENDING", 2],
    ["LEASED", 1],
    ["SUCCEEDED", 2],
    ["DEAD_LETTERED", 1],
  ];
  it.each(cases)(
    "makes a %s job (%i failed attempts) that reads as the real path's",
    async (status, failedAttempts) => {
      const made = await insertJob(db, { jobType: await freshType(), status, failedAttempts });
      expect(made.status).toBe(status);
      expect(await story(db, made.id)).toEqual(await story(db, await realJob(status, failedAttempts)));
    },
  );

  it("writes a succeeded job's attempt and events as the worker's path does", async () => {
    const made = await insertJob(db, { jobType: "factory.mail", status: "SUCCEEDED", payload: { to: "ada" } });
    expect(made).toMatchObject({ status: "SUCCEEDED", attempt: 1, stage: "completed", payload: { to: "ada" } });
    expect(made.lease).toBeNull();
    const { events, attempts } = await story(db, made.id);
    expect(events.map((e) => e.eventType)).toEqual(["ENQUEUED", "LEASED", "SUCCEEDED"]);
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, finished: true, outcome: null })]);
  });

  it("hands back the lease of a LEASED job, which the store's completion accepts", async () => {
    const made = await insertJob(db, { jobType: "factory.mail", status: "LEASED", workerId: "w-7" });
    expect(made.lease).toEqual({ jobId: made.id, runNumber: 1, attempt: 1, workerId: "w-7" });
    await completeJobSuccess(db, { lease: made.lease! });
    expect((await getJobById(db, made.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
  });

  it("sets an expired lease when asked, and leases only its own job whatever else is due", async () => {
    const other = await insertJob(db, { jobType: "factory.mail", priority: 1000 });
    const past = new Date(Date.now() - 60_000);
    const made = await insertJob(db, { jobType: "factory.mail", status: "LEASED", leaseExpiresAt: past });
    expect(made.leaseExpiresAt).toEqual(past);
    expect((await getJobById(db, other.id, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
  });

  it("works inside the caller's transaction and defines a missing job type", async () => {
    await expect(
      db.transaction(async (tx) => {
        const made = await insertJob(tx, { jobType: "factory.never-defined", status: "DEAD_LETTERED" });
        expect(made.lastErrorCode).toBe("testing.failed");
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
  });

  it("refuses a state it cannot make", async () => {
    await expect(
      insertJob(db, { jobType: "factory.mail", status: "SUCCEEDED", failedAttempts: 2, maxAttempts: 2 }),
    ).rejects.toThrow(/none to spare/);
    await expect(insertJob(db, { jobType: "factory.mail", leaseExpiresAt: new Date() })).rejects.toThrow(/LEASED/);
    await expect(insertJob(db, { jobType: "factory.mail", status: "DONE" as JobStatus })).rejects.toThrow(/status/);
  });
});

describe("insertWorkflowRun", () => {
  const chain = () =>
    WorkflowDagBuilder.new("factory.flow", {})
      .job("fetch", "factory.step", {})
      .job("parse", "factory.step", {})
      .afterSuccess("parse", ["fetch"])
      .job("store", "factory.step", {})
      .afterSuccess("store", ["parse"])
      .build();

  it("drives steps in dependency order and leaves the rest as the run's release left them", async () => {
    const { run, steps } = await insertWorkflowRun(db, {
      run: chain(),
      statuses: { fetch: "SUCCEEDED", parse: "RUNNING" },
    });
    expect(run.status).toBe("RUNNING");
    expect([steps.fetch!.status, steps.parse!.status, steps.store!.status]).toEqual([
      "SUCCEEDED",
      "RUNNING",
      "BLOCKED",
    ]);
    const parseJob = (await getJobById(db, steps.parse!.jobId!, ALL_ORGANIZATIONS))!;
    expect(parseJob).toMatchObject({ status: "LEASED", workerId: FACTORY_WORKER_ID, workflowStepId: steps.parse!.id });
  });

  it("cancels the dependents of a failed step and finishes the run with errors", async () => {
    const { run, steps } = await insertWorkflowRun(db, {
      run: chain(),
      statuses: { parse: "FAILED", fetch: "SUCCEEDED" },
    });
    expect(Object.values(steps).map((s) => [s.stepKey, s.status])).toEqual([
      ["fetch", "SUCCEEDED"],
      ["parse", "FAILED"],
      ["store", "CANCELED"],
    ]);
    expect(run.status).toBe("COMPLETED_WITH_ERRORS");
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("COMPLETED_WITH_ERRORS");
  });

  it("completes external steps", async () => {
    const gated = WorkflowRunEnqueueBuilder.tryNew("factory.gated", {})
      .step(Step.tryJob("prepare", "factory.step", {}))
      .step(Step.tryExternal("approve", {}).dependsOnSuccess(["prepare"]))
      .step(Step.tryJob("ship", "factory.step", {}).dependsOnSuccess(["approve"]))
      .build();
    const { steps } = await insertWorkflowRun(db, {
      run: gated,
      statuses: { prepare: "SUCCEEDED", approve: "SUCCEEDED" },
    });
    expect([steps.approve!.status, steps.ship!.status]).toEqual(["SUCCEEDED", "ENQUEUED"]);
  });

  it("leases a step's job as the worker's claim does", async () => {
    const jobType = await freshType();
    const one = () => WorkflowDagBuilder.new("factory.single", {}).job("only", jobType, {}).build();
    const made = await insertWorkflowRun(db, { run: one(), statuses: { only: "RUNNING" } });
    const real = await enqueueWorkflowRun(db, one());
    await claim(jobType);
    const [realStep] = await runSteps(db, real.id);
    const shape = (step: typeof realStep) => ({ status: step!.status, started: step!.startedAt !== null });
    expect(shape(made.steps.only)).toEqual(shape(realStep));
    expect(await story(db, made.steps.only!.jobId!)).toEqual(await story(db, realStep!.jobId!));
  });

  it("says which steps could not reach their status", async () => {
    await expect(insertWorkflowRun(db, { run: chain(), statuses: { store: "SUCCEEDED" } })).rejects.toThrow(
      "store is BLOCKED, not SUCCEEDED",
    );
    await expect(insertWorkflowRun(db, { run: chain(), statuses: { nope: "SUCCEEDED" } })).rejects.toThrow(
      /no step nope/,
    );
  });
});
