import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, RunledgerError, WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  cancelWorkflowRun,
  enqueueWorkflowRun,
  queryRows,
  RUN_TERMINAL_CHANNEL,
  waitForWorkflowRun,
} from "../../src/store/index.ts";
import { claimJobs, completeJobSuccess, completeJobsSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase({ max: 4 });
const ORG = "0190f0a0-0000-7000-8000-0000000000a1";
const OTHER = "0190f0a0-0000-7000-8000-0000000000b2";
const ALL = { scope: ALL_ORGANIZATIONS };

beforeAll(async () => {
  await defineJob(db, "wait.step", { maxAttempts: 1 });
});

const oneStep = (organizationId: string | null = null) =>
  enqueueWorkflowRun(db, {
    ...WorkflowDagBuilder.new("wait.flow", {}).job("only", "wait.step", {}).build(),
    organizationId,
  });

/** Claim the run's one job and return its lease. */
async function leaseOf(runId: string) {
  const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 100, jobTypes: ["wait.step"] });
  const job = jobs.find((j) => j.workflowRunId === runId)!;
  return { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" };
}

async function code(call: Promise<unknown>): Promise<string> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunledgerError);
  return (error as RunledgerError).code;
}

describe("waitForWorkflowRun", () => {
  it("wakes on the run's terminal notification, not on its poll", async () => {
    const run = await oneStep();
    const lease = await leaseOf(run.id);
    let done = false;
    const waiting = waitForWorkflowRun(db, run.id, { ...ALL, pollIntervalMs: 60_000, timeoutMs: 20_000 }).finally(
      () => {
        done = true;
      },
    );
    // Listening before the run finishes: the LISTEN connection's backend exists.
    await waitFor(async () => {
      const [row] = await queryRows<{ n: number }>(
        db,
        sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen%'`,
      );
      return (row?.n ?? 0) > 0;
    });
    expect(done).toBe(false);
    const started = Date.now();
    await completeJobSuccess(db, { lease });
    const finished = await waiting;
    expect(finished).toMatchObject({ id: run.id, status: "SUCCEEDED" });
    expect(finished.finishedAt).not.toBeNull();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("returns a finished run at once, and a canceled one when the cancel commits", async () => {
    const run = await oneStep();
    await completeJobSuccess(db, { lease: await leaseOf(run.id) });
    expect(await waitForWorkflowRun(db, run.id, { ...ALL, pollIntervalMs: 60_000 })).toMatchObject({
      status: "SUCCEEDED",
    });

    const canceled = await oneStep();
    const waiting = waitForWorkflowRun(db, canceled.id, { ...ALL, pollIntervalMs: 60_000, timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: canceled.id });
    expect(await waiting).toMatchObject({ status: "CANCELED" });
  });

  it("finds a run finished without a notification by polling", async () => {
    const run = await oneStep();
    const waiting = waitForWorkflowRun(db, run.id, { ...ALL, pollIntervalMs: 50, timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Written behind the engine's back: no statement of the engine, so no notification.
    await db.execute(
      sql`update runledger.workflow_runs set status = 'COMPLETED_WITH_ERRORS', finished_at = now() where id = ${run.id}`,
    );
    expect(await waiting).toMatchObject({ status: "COMPLETED_WITH_ERRORS" });
  });

  it("times out, aborts, and refuses runs it cannot see and bad options", async () => {
    const run = await oneStep(ORG);
    expect(await code(waitForWorkflowRun(db, run.id, { ...ALL, timeoutMs: 100 }))).toBe("workflow.run_wait_timeout");

    const controller = new AbortController();
    const waiting = waitForWorkflowRun(db, run.id, { ...ALL, signal: controller.signal });
    controller.abort(new Error("user left"));
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "workflow.run_wait_aborted", cause: new Error("user left") });
    expect(await code(waitForWorkflowRun(db, run.id, { ...ALL, signal: AbortSignal.abort() }))).toBe(
      "workflow.run_wait_aborted",
    );

    expect(await code(waitForWorkflowRun(db, run.id, { scope: { organizationId: OTHER } }))).toBe(
      "workflow.run_not_found",
    );
    expect(await code(waitForWorkflowRun(db, "nope", ALL))).toBe("workflow.run_not_found");
    expect(await code(waitForWorkflowRun(db, run.id, {} as never))).toBe("scope.required");
    for (const options of [{ timeoutMs: 0 }, { timeoutMs: -1 }, { pollIntervalMs: Number.POSITIVE_INFINITY }]) {
      expect(await code(waitForWorkflowRun(db, run.id, { ...ALL, ...options }))).toBe(
        "workflow.run_wait_invalid_options",
      );
    }
    // Its own organization waits for it.
    const waitingOwn = waitForWorkflowRun(db, run.id, { scope: { organizationId: ORG }, timeoutMs: 20_000 });
    await completeJobSuccess(db, { lease: await leaseOf(run.id) });
    expect(await waitingOwn).toMatchObject({ status: "SUCCEEDED", organizationId: ORG });
  });

  it("announces the runs a completion batch finishes with one notification", async () => {
    const runs = await Promise.all([oneStep(), oneStep(), oneStep()]);
    const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 100, jobTypes: ["wait.step"] });
    expect(jobs.map((j) => j.workflowRunId).sort()).toEqual(runs.map((r) => r.id).sort());
    const leases = jobs.map((job) => ({ jobId: job.id, runNumber: 1, attempt: 1, workerId: "w" }));
    const payloads: string[] = [];
    const subscription = await db.$runledger.listen(RUN_TERMINAL_CHANNEL, (payload) => payloads.push(payload));
    try {
      const waiters = runs.map((run) => waitForWorkflowRun(db, run.id, { ...ALL, pollIntervalMs: 60_000 }));
      await completeJobsSuccess(
        db,
        leases.map((lease) => ({ lease })),
      );
      expect((await Promise.all(waiters)).map((r) => r.status)).toEqual(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
      await waitFor(() => payloads.length > 0);
      expect(payloads).toHaveLength(1);
      expect(payloads[0]!.split(",").sort()).toEqual(runs.map((r) => r.id).sort());
    } finally {
      await subscription.unlisten();
    }
  });
});
