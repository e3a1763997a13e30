// Errors a user can act on: a wrong URL, a database or role that does not exist, and a database
// that was never migrated each come back as a code saying so, not as `db.query_failed`.

import { inspect } from "node:util";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, newId, RunledgerError, SchemaCompatibilityError } from "../../src/core/index.ts";
import { JobCatalog } from "../../src/runtime/index.ts";
import * as store from "../../src/store/index.ts";
import { createDb, migrate, type RunledgerDb } from "../../src/store/index.ts";
import * as worker from "../../src/store/worker.ts";
import { withDatabase } from "../../src/testing/server.ts";
import { useTestDatabase } from "../support/db.ts";

const database = await useTestDatabase({ max: 2 });
const handles: RunledgerDb[] = [];
afterAll(() => Promise.all(handles.map((db) => db.$runledger.close())));

function open(url: string): RunledgerDb {
  const db = createDb(url, { max: 1 });
  handles.push(db);
  return db;
}

async function rejection(promise: Promise<unknown>): Promise<RunledgerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunledgerError);
  return error as RunledgerError;
}

describe("connection settings", () => {
  it.each([
    ["not a url", "not_a_url"],
    ["", "empty"],
    [undefined, "empty"],
    ["mysql://root@127.0.0.1/app", "protocol"],
  ])("createDb(%j) throws db.invalid_url without repeating the URL", (url, problem) => {
    let error: unknown;
    try {
      createDb(url as string);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RunledgerError);
    expect(error).toMatchObject({ code: "db.invalid_url", details: { problem } });
    if (url) expect((error as Error).message).not.toContain(url);
  });

  it("keeps a password in a refused URL out of the message", () => {
    expect(() => createDb("http://user:s3cret@host/db")).toThrow(expect.objectContaining({ code: "db.invalid_url" }));
    try {
      createDb("http://user:s3cret@host/db");
    } catch (error) {
      expect((error as RunledgerError).internalMessage()).not.toContain("s3cret");
    }
  });

  it("names a database that does not exist", async () => {
    const db = open(withDatabase(database.serverUrl, "runledger_no_such_database"));
    const error = await rejection(store.getJobById(db, newId(), ALL_ORGANIZATIONS));
    expect(error).toMatchObject({ code: "db.database_not_found", details: { database: "runledger_no_such_database" } });
  });

  it("says the role was refused when it does not exist", async () => {
    const url = new URL(database.url);
    url.username = "runledger_no_such_role";
    const error = await rejection(store.listJobs(open(url.toString()), { scope: ALL_ORGANIZATIONS, limit: 1 }));
    expect(error.code).toBe("db.authentication_failed");
  });

  it("migrate against a missing database says the database is missing", async () => {
    const error = await rejection(migrate(open(withDatabase(database.serverUrl, "runledger_no_such_database"))));
    expect(error.code).toBe("db.database_not_found");
    expect(error.message).toMatch(/does not exist/);
  });
});

describe("a database that was never migrated", async () => {
  const bare = await useTestDatabase({ max: 2 });
  await bare.db.execute(sql`drop schema runledger cascade`);
  const db = bare.db;
  const id = newId();
  const lease = { jobId: id, runNumber: 1, attempt: 1, workerId: "w" };
  const catalog = new JobCatalog().job("bare.job", async () => {});

  // Every store call that reaches the database, with input valid enough to get there.
  const calls: Record<string, () => Promise<unknown>> = {
    enqueueJob: () => store.enqueueJob(db, { jobType: "bare.job" }),
    enqueueJobs: () => store.enqueueJobs(db, [{ jobType: "bare.job" }]),
    claimJobs: () => worker.claimJobs(db, { workerId: "w", leaseSeconds: 30, limit: 1, jobTypes: ["bare.job"] }),
    heartbeatJob: () => worker.heartbeatJob(db, { lease, leaseSeconds: 30 }),
    updateJobProgress: () => worker.updateJobProgress(db, { lease, progressDone: 1, progressTotal: 2 }),
    completeJobSuccess: () => worker.completeJobSuccess(db, { lease }),
    completeJobFailure: () => worker.completeJobFailure(db, { lease, kind: "TERMINAL", code: "x", message: "x" }),
    releaseUnstartedJobClaim: () => worker.releaseUnstartedJobClaim(db, { lease, reason: "x" }),
    reapExpiredLeases: () => worker.reapExpiredLeases(db, { limit: 1, retryDelayMs: 1000 }),
    cancelJob: () => store.cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: id }),
    requeueJob: () => store.requeueJob(db, { scope: ALL_ORGANIZATIONS, jobId: id }),
    getJobById: () => store.getJobById(db, id, ALL_ORGANIZATIONS),
    listJobs: () => store.listJobs(db, { scope: ALL_ORGANIZATIONS, limit: 1 }),
    listJobEvents: () => store.listJobEvents(db, { scope: ALL_ORGANIZATIONS, jobId: id, limit: 1 }),
    listJobAttempts: () => store.listJobAttempts(db, { scope: ALL_ORGANIZATIONS, jobId: id, limit: 1 }),
    getJobMetrics: () => store.getJobMetrics(db, { scope: ALL_ORGANIZATIONS }),
    insertJobLog: () =>
      store.insertJobLog(db, {
        scope: ALL_ORGANIZATIONS,
        jobId: id,
        runNumber: 1,
        attempt: 1,
        level: "info",
        message: "x",
      }),
    listJobLogs: () => store.listJobLogs(db, { scope: ALL_ORGANIZATIONS, jobId: id, limit: 1 }),
    enqueueWorkflowRun: () =>
      store.enqueueWorkflowRun(db, catalog.workflow("bare.flow", {}).job("a", "bare.job", {}).build()),
    completeExternalWorkflowStep: () =>
      store.completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: id,
        stepKey: "a",
        terminalStatus: "SUCCEEDED",
      }),
    cancelWorkflowRun: () => store.cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: id }),
    appendWorkflowSteps: () =>
      store.appendWorkflowSteps(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: id,
        mutationKey: "m",
        appendWindowStepKey: "w",
        steps: [],
      }),
    getWorkflowRunById: () => store.getWorkflowRunById(db, id, ALL_ORGANIZATIONS),
    listWorkflowRuns: () => store.listWorkflowRuns(db, { scope: ALL_ORGANIZATIONS, limit: 1 }),
    listWorkflowSteps: () => store.listWorkflowSteps(db, { workflowRunId: id, scope: ALL_ORGANIZATIONS, limit: 1 }),
    listWorkflowStepDependencies: () =>
      store.listWorkflowStepDependencies(db, { workflowRunId: id, scope: ALL_ORGANIZATIONS, limit: 1 }),
    upsertJobSchedule: () =>
      store.upsertJobSchedule(db, { name: "s", jobType: "bare.job", cronExpr: "0 0 * * * *", nextFireAt: new Date() }),
    setJobScheduleActive: () => store.setJobScheduleActive(db, "s", false, ALL_ORGANIZATIONS),
    setJobScheduleNextFireAt: () => store.setJobScheduleNextFireAt(db, "s", new Date(), ALL_ORGANIZATIONS),
    listJobSchedules: () => store.listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 1 }),
    getJobSchedule: () => store.getJobSchedule(db, "s", ALL_ORGANIZATIONS),
    backfillJobSchedule: () =>
      store.backfillJobSchedule(db, { name: "s", from: new Date(0), to: new Date(1000) }, ALL_ORGANIZATIONS),
    claimDueSchedules: () => worker.claimDueSchedules(db, { limit: 1 }),
    materializeDueSchedules: () => worker.materializeDueSchedules(db, { now: new Date(), limit: 1 }),
    upsertJobDefinition: () => store.upsertJobDefinition(db, { jobType: "bare.job" }),
    getJobDefinition: () => store.getJobDefinition(db, "bare.job"),
    listJobDefinitions: () => store.listJobDefinitions(db, { limit: 1 }),
    updateJobDefinition: () => store.updateJobDefinition(db, "bare.job", { isEnabled: false }),
    syncDefinitions: () => catalog.syncDefinitions(db),
    syncDefinitionsExact: () => catalog.syncDefinitionsExact(db, ["bare.job"]),
    catalogEnqueue: () => catalog.enqueue(db, "bare.job", {}),
    upsertJobRuntimeConfig: () =>
      store.upsertJobRuntimeConfig(db, { jobType: "bare.job", schemaVersion: 1, config: {} }),
    getJobRuntimeConfig: () => store.getJobRuntimeConfig(db, "bare.job"),
    listJobRuntimeConfigs: () => store.listJobRuntimeConfigs(db, { limit: 1 }),
    ensureSchemaCompatible: () => store.ensureSchemaCompatible(db),
  };

  it.each(Object.keys(calls))("%s refuses with schema.uninitialized", async (name) => {
    const error = await rejection(calls[name]!());
    expect(error).toBeInstanceOf(SchemaCompatibilityError);
    expect(error.code).toBe("schema.uninitialized");
  });

  it("keeps the statement and its parameters out of the error, its cause and util.inspect", async () => {
    const card = "4111111111111111";
    const error = await rejection(store.enqueueJob(db, { jobType: "bare.job", payload: { card } }));
    expect(error.code).toBe("schema.uninitialized");
    const printed = inspect(error, { depth: 10 });
    expect(printed).not.toContain(card);
    expect(printed).not.toMatch(/insert into|params/i);
    expect(JSON.stringify(error)).not.toContain(card);
    // What stays: the SQLSTATE of the driver's error, for code that switches on it.
    expect(error.cause).toMatchObject({ name: "DriverFailure", code: "42P01" });
  });

  it("still says schema.uninitialized after other calls failed (no connection left broken)", async () => {
    const error = await rejection(store.getJobById(db, id, ALL_ORGANIZATIONS));
    expect(error.code).toBe("schema.uninitialized");
    // And inspectSchema reports the state instead of throwing.
    expect((await store.inspectSchema(db)).state).toBe("uninitialized");
  });
});
