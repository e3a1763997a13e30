import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, RunledgerError, WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  countWorkflowRuns,
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getJobDefinition,
  getJobPayloadByIdempotencyKey,
  getLatestJobPayloadForRun,
  getLatestWorkflowRunByType,
  getWorkflowRunByIdempotencyKey,
  getWorkflowRunIdForJob,
  insertJobDefinitionIfMissing,
  listWorkflowStepKeysForUpdate,
  queryRows,
  updateJobDefinition,
  updateWorkflowStepAndPendingJobPayload,
} from "../../src/store/index.ts";
import { claimJobs } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase({ max: 4 });
const A = "0190f0a0-0000-7000-8000-0000000000a1";
const B = "0190f0a0-0000-7000-8000-0000000000b2";
const ALL = ALL_ORGANIZATIONS;
const RUN_ID = "0190f0a0-1111-7000-8000-000000000001";

beforeAll(async () => {
  await defineJob(db, "l.job");
  await defineJob(db, "l.step");
});

const flow = (type: string, organizationId: string | null, idempotencyKey: string | null = null) =>
  enqueueWorkflowRun(db, {
    ...WorkflowDagBuilder.new(type, { organizationId })
      .job("first", "l.step", { n: 1 })
      .job("second", "l.step", { n: 2 })
      .afterSuccess("second", ["first"])
      .build(),
    organizationId,
    idempotencyKey,
  });

async function refusal(call: () => Promise<unknown>): Promise<string> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunledgerError);
  return (error as RunledgerError).code;
}

describe("job lookups", () => {
  it("finds a payload by idempotency key in the key's own organization scope", async () => {
    const none = await enqueueJob(db, { jobType: "l.job", idempotencyKey: "k", payload: { who: "none" } });
    const a = await enqueueJob(db, { jobType: "l.job", organizationId: A, idempotencyKey: "k", payload: { who: "a" } });
    const lookup = (scope: typeof ALL | { organizationId: string }, key = "k", jobType = "l.job") =>
      getJobPayloadByIdempotencyKey(db, { scope, jobType, idempotencyKey: key });
    expect(await lookup({ organizationId: A })).toEqual({ id: a.id, payload: { who: "a" } });
    // All organizations names the key of jobs without one: the scope the key was given in.
    expect(await lookup(ALL)).toEqual({ id: none.id, payload: { who: "none" } });
    expect(await lookup({ organizationId: B })).toBeNull();
    expect(await lookup(ALL, "other")).toBeNull();
    expect(await lookup(ALL, "k", "l.step")).toBeNull();
    expect(await lookup(ALL, " ")).toBeNull();
    expect(await lookup(ALL, "a\u0000")).toBeNull();
    expect(await refusal(() => getJobPayloadByIdempotencyKey(db, { jobType: "l.job" } as never))).toBe(
      "scope.required",
    );
  });

  it("finds the newest job of a type whose payload names an application run", async () => {
    const older = await enqueueJob(db, { jobType: "l.job", organizationId: A, payload: { run_id: RUN_ID, n: 1 } });
    const newer = await enqueueJob(db, { jobType: "l.job", organizationId: A, payload: { run_id: RUN_ID, n: 2 } });
    await enqueueJob(db, { jobType: "l.step", organizationId: A, payload: { run_id: RUN_ID, n: 3 } });
    const latest = (scope: typeof ALL | { organizationId: string }, runId = RUN_ID) =>
      getLatestJobPayloadForRun(db, { scope, jobType: "l.job", runId });
    expect(await latest({ organizationId: A })).toEqual({ id: newer.id, payload: { run_id: RUN_ID, n: 2 } });
    expect(await latest(ALL, RUN_ID.toUpperCase())).toMatchObject({ id: newer.id });
    expect(await latest({ organizationId: B })).toBeNull();
    expect(await latest(ALL, "0190f0a0-1111-7000-8000-000000000002")).toBeNull();
    expect(await latest(ALL, "not-a-uuid")).toBeNull();
    expect(older.id < newer.id).toBe(true);
  });
});

describe("workflow lookups", () => {
  it("finds the latest run of a type, a run by key, and counts runs in a scope", async () => {
    const first = await flow("l.flow", A);
    const second = await flow("l.flow", A);
    const b = await flow("l.flow", B);
    const other = await flow("l.other", A);
    expect((await getLatestWorkflowRunByType(db, { scope: { organizationId: A }, workflowType: "l.flow" }))!.id).toBe(
      second.id,
    );
    expect((await getLatestWorkflowRunByType(db, { scope: ALL, workflowType: "l.flow" }))!.id).toBe(b.id);
    expect(await getLatestWorkflowRunByType(db, { scope: { organizationId: B }, workflowType: "l.other" })).toBeNull();
    expect(first.id < second.id).toBe(true);

    const keyedNone = await flow("l.keyed", null, "key");
    const keyedA = await flow("l.keyed", A, "key");
    const byKey = (scope: typeof ALL | { organizationId: string }) =>
      getWorkflowRunByIdempotencyKey(db, { scope, workflowType: "l.keyed", idempotencyKey: "key" });
    expect((await byKey({ organizationId: A }))!.id).toBe(keyedA.id);
    expect((await byKey(ALL))!.id).toBe(keyedNone.id);
    expect(await byKey({ organizationId: B })).toBeNull();

    expect(await countWorkflowRuns(db, { scope: { organizationId: A } })).toBe(4);
    expect(await countWorkflowRuns(db, { scope: { organizationId: A }, workflowTypeContains: "FLOW" })).toBe(2);
    expect(await countWorkflowRuns(db, { scope: ALL, workflowTypeContains: "l.keyed", status: "RUNNING" })).toBe(2);
    expect(await countWorkflowRuns(db, { scope: ALL, status: "SUCCEEDED" })).toBe(0);
    expect(await countWorkflowRuns(db, { scope: ALL, workflowTypeContains: "%" })).toBe(0);
    expect(await refusal(() => countWorkflowRuns(db, { scope: ALL, status: "NOPE" as never }))).toBe(
      "job.invalid_pagination",
    );
    expect(other.organizationId).toBe(A);
  });

  it("names the run of a step's job, and nothing for a plain job or outside the scope", async () => {
    const run = await flow("l.owner", A);
    const [step] = await runSteps(db, run.id);
    const plain = await enqueueJob(db, { jobType: "l.job", organizationId: A });
    expect(await getWorkflowRunIdForJob(db, step!.jobId!, { scope: { organizationId: A } })).toBe(run.id);
    expect(await getWorkflowRunIdForJob(db, step!.jobId!, { scope: ALL })).toBe(run.id);
    expect(await getWorkflowRunIdForJob(db, step!.jobId!, { scope: { organizationId: B } })).toBeNull();
    expect(await getWorkflowRunIdForJob(db, plain.id, { scope: ALL })).toBeNull();
    expect(await getWorkflowRunIdForJob(db, "nope", { scope: ALL })).toBeNull();
  });
});

describe("workflow step updates", () => {
  it("lists a run's step keys with the steps and the run locked until the transaction ends", async () => {
    const run = await flow("l.lock", A);
    await db.transaction(async (tx) => {
      expect(await listWorkflowStepKeysForUpdate(tx, run.id, { scope: { organizationId: A } })).toEqual([
        "first",
        "second",
      ]);
      // Another connection finds every step and the run locked.
      const free = await queryRows<{ id: string }>(
        db,
        sql`select id from runledger.workflow_steps where workflow_run_id = ${run.id} for update skip locked`,
      );
      expect(free).toEqual([]);
      const runFree = await queryRows<{ id: string }>(
        db,
        sql`select id from runledger.workflow_runs where id = ${run.id} for no key update skip locked`,
      );
      expect(runFree).toEqual([]);
    });
    const free = await queryRows<{ id: string }>(
      db,
      sql`select id from runledger.workflow_steps where workflow_run_id = ${run.id} for update skip locked`,
    );
    expect(free).toHaveLength(2);
    expect(await refusal(() => listWorkflowStepKeysForUpdate(db, run.id, { scope: { organizationId: B } }))).toBe(
      "workflow.run_not_found",
    );
    expect(await refusal(() => listWorkflowStepKeysForUpdate(db, "x", { scope: ALL }))).toBe("workflow.run_not_found");
  });

  it("replaces a step's and its pending job's payload, and refuses once the job was claimed", async () => {
    const run = await flow("l.payload", A);
    const [first] = await runSteps(db, run.id);
    const update = (payload: unknown, scope: typeof ALL | { organizationId: string } = { organizationId: A }) =>
      updateWorkflowStepAndPendingJobPayload(db, {
        scope,
        workflowRunId: run.id,
        stepId: first!.id,
        jobId: first!.jobId!,
        payload,
      });
    expect(await update({ n: 10 }, { organizationId: B })).toBe(false);
    expect(await update({ n: 10 })).toBe(true);
    expect((await getJobById(db, first!.jobId!, ALL_ORGANIZATIONS))!.payload).toEqual({ n: 10 });
    expect((await runSteps(db, run.id))[0]!.payload).toEqual({ n: 10 });
    // A mismatched step/job pair changes nothing.
    expect(
      await updateWorkflowStepAndPendingJobPayload(db, {
        scope: ALL,
        workflowRunId: run.id,
        stepId: (await runSteps(db, run.id))[1]!.id,
        jobId: first!.jobId!,
        payload: { n: 99 },
      }),
    ).toBe(false);
    const before = await ledgerCounts(db);
    expect(await refusal(() => update({ bad: "\u0000" }))).toBe("job.invalid_payload");
    expect(await ledgerCounts(db)).toEqual(before);

    await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 10, jobTypes: ["l.step"] });
    expect(await update({ n: 11 })).toBe(false);
    expect((await getJobById(db, first!.jobId!, ALL_ORGANIZATIONS))!.payload).toEqual({ n: 10 });
    expect((await runSteps(db, run.id))[0]!.payload).toEqual({ n: 10 });
  });
});

describe("job definitions", () => {
  it("inserts a definition only when missing, leaving an existing one as it is", async () => {
    const created = await insertJobDefinitionIfMissing(db, { jobType: "l.new", maxAttempts: 4 });
    expect(created).toMatchObject({ created: true, definition: { jobType: "l.new", maxAttempts: 4, isEnabled: true } });
    await updateJobDefinition(db, "l.new", { isEnabled: false });
    const again = await insertJobDefinitionIfMissing(db, { jobType: "l.new", maxAttempts: 9, isEnabled: true });
    expect(again).toMatchObject({ created: false, definition: { maxAttempts: 4, isEnabled: false } });
    expect(await getJobDefinition(db, "l.new")).toMatchObject({ maxAttempts: 4, isEnabled: false });
    expect(await refusal(() => insertJobDefinitionIfMissing(db, { jobType: " " }))).toBe("identifier.job_type_blank");
    expect(await refusal(() => insertJobDefinitionIfMissing(db, { jobType: "l.bad", maxAttempts: 0 }))).toBe(
      "job_definition.invalid_value",
    );
    expect(await getJobDefinition(db, "l.bad")).toBeNull();
  });
});
