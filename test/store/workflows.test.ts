import { beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  WorkflowDagBuilder,
  WorkflowRunEnqueueBuilder,
  WorkflowStepEnqueueBuilder,
} from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  enqueueWorkflowRun,
  getWorkflowRunById,
  listWorkflowRuns,
  listWorkflowStepDependencies,
  type RunledgerDb,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobSuccess, type LeaseIdentity } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase();
const ORG_A = "0190f0a0-0000-7000-8000-00000000000a";
const ORG_B = "0190f0a0-0000-7000-8000-00000000000b";

beforeAll(async () => {
  for (const type of ["profiles.crawl", "profiles.classify", "profiles.score", "profiles.persist", "cleanup", "step"]) {
    await defineJob(db, type, { maxAttempts: 1 });
  }
});

/** Claim every due job of the given types and succeed (or fail) it; returns the job types handled. */
async function work(
  database: RunledgerDb,
  types: string[],
  decide: (jobType: string) => "succeed" | "fail" = () => "succeed",
): Promise<string[]> {
  const handled: string[] = [];
  for (;;) {
    const jobs = await claimJobs(database, { workerId: "w", leaseSeconds: 60, limit: 50, jobTypes: types });
    if (jobs.length === 0) return handled;
    for (const job of jobs) {
      const lease: LeaseIdentity = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" };
      handled.push(job.jobType);
      if (decide(job.jobType) === "succeed") await completeJobSuccess(database, { lease });
      else await completeJobFailure(database, { lease, kind: "TERMINAL", code: "app.failed", message: "failed" });
    }
  }
}

const PROFILE_TYPES = ["profiles.crawl", "profiles.classify", "profiles.score", "profiles.persist", "cleanup"];

function profileResearch(key: string) {
  return WorkflowDagBuilder.new("profiles.research", { source: "api" })
    .idempotencyKey(key)
    .job("crawl", "profiles.crawl", { profile_id: "p_123" })
    .job("classify", "profiles.classify", { profile_id: "p_123" })
    .afterSuccess("classify", ["crawl"])
    .job("score", "profiles.score", { profile_id: "p_123" })
    .afterSuccess("score", ["crawl"])
    .job("persist", "profiles.persist", { profile_id: "p_123" })
    .afterSuccess("persist", ["classify", "score"])
    .build();
}

describe("workflow runs", () => {
  it("runs the fan-out/fan-in recipe to SUCCEEDED, releasing each step once its prerequisites succeed", async () => {
    const run = await enqueueWorkflowRun(db, profileResearch("profile:p_123:research"));
    expect(run).toMatchObject({ status: "RUNNING", created: true, workflowType: "profiles.research" });
    const steps = await runSteps(db, run.id);
    expect(steps.map((s) => [s.stepKey, s.status])).toEqual([
      ["crawl", "ENQUEUED"],
      ["classify", "BLOCKED"],
      ["score", "BLOCKED"],
      ["persist", "BLOCKED"],
    ]);
    expect(await work(db, PROFILE_TYPES)).toEqual([
      "profiles.crawl",
      "profiles.classify",
      "profiles.score",
      "profiles.persist",
    ]);
    const finished = await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS);
    expect(finished).toMatchObject({ status: "SUCCEEDED" });
    expect(finished!.finishedAt).not.toBeNull();
    expect((await runSteps(db, run.id)).every((s) => s.status === "SUCCEEDED" && s.jobId !== null)).toBe(true);
    const edges = await listWorkflowStepDependencies(db, {
      workflowRunId: run.id,
      scope: ALL_ORGANIZATIONS,
      limit: 10,
    });
    expect(edges).toEqual({ items: expect.any(Array), next: null });
    expect(edges.items).toHaveLength(4);
  });

  it("returns the existing run for an identical keyed retry and refuses a different one", async () => {
    const first = await enqueueWorkflowRun(db, profileResearch("retry-key"));
    const again = await enqueueWorkflowRun(db, profileResearch("retry-key"));
    expect(again).toMatchObject({ id: first.id, created: false });
    const different = WorkflowDagBuilder.new("profiles.research", { source: "api" })
      .idempotencyKey("retry-key")
      .job("crawl", "profiles.crawl", { profile_id: "other" })
      .build();
    await expect(enqueueWorkflowRun(db, different)).rejects.toMatchObject({
      code: "workflow.enqueue_conflicting_retry",
    });
    // The retry did not re-initialize anything: one run, one root job, which runs through.
    expect(await work(db, PROFILE_TYPES)).toHaveLength(4);
  });

  it("cancels after_success dependents of a failed step while an after_terminal cleanup still runs", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowDagBuilder.new("with.cleanup", {})
        .job("crawl", "profiles.crawl", {})
        .job("classify", "profiles.classify", {})
        .afterSuccess("classify", ["crawl"])
        .job("persist", "profiles.persist", {})
        .afterSuccess("persist", ["classify"])
        .job("cleanup", "cleanup", {})
        .afterTerminal("cleanup", ["crawl"])
        .build(),
    );
    const handled = await work(db, PROFILE_TYPES, (type) => (type === "profiles.crawl" ? "fail" : "succeed"));
    expect(handled.sort()).toEqual(["cleanup", "profiles.crawl"]);
    const steps = Object.fromEntries((await runSteps(db, run.id)).map((s) => [s.stepKey, s]));
    expect(steps.crawl).toMatchObject({ status: "FAILED", lastErrorCode: "app.failed" });
    for (const key of ["classify", "persist"]) {
      expect(steps[key]).toMatchObject({
        status: "CANCELED",
        statusReason: "workflow.dependency_unsatisfied",
        lastErrorCode: "workflow.dependency_unsatisfied",
        jobId: null,
      });
    }
    expect(steps.cleanup).toMatchObject({ status: "SUCCEEDED" });
    expect(await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS)).toMatchObject({ status: "COMPLETED_WITH_ERRORS" });
  });

  it("holds dependents behind an external gate until it is completed", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("approval.flow", {})
        .step(WorkflowStepEnqueueBuilder.tryExternal("approve", { asked: "ops" }))
        .step(WorkflowStepEnqueueBuilder.tryJob("ship", "step", {}).dependsOnSuccess(["approve"]))
        .build(),
    );
    expect(run.status).toBe("RUNNING");
    expect(await work(db, ["step"])).toEqual([]);
    let steps = await runSteps(db, run.id);
    expect(steps.map((s) => s.status)).toEqual(["WAITING_FOR_EXTERNAL", "BLOCKED"]);

    const gate = await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      stepKey: "approve",
      terminalStatus: "SUCCEEDED",
      statusReason: "approved by alice",
    });
    expect(gate).toMatchObject({ status: "SUCCEEDED", statusReason: "approved by alice" });
    // Same status again is idempotent; another is refused.
    expect(
      await completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: run.id,
        stepKey: "approve",
        terminalStatus: "SUCCEEDED",
      }),
    ).toMatchObject({ status: "SUCCEEDED" });
    await expect(
      completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: run.id,
        stepKey: "approve",
        terminalStatus: "FAILED",
      }),
    ).rejects.toMatchObject({ code: "workflow.external_step_conflicting_completion_retry" });
    await expect(
      completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: run.id,
        stepKey: "ship",
        terminalStatus: "SUCCEEDED",
      }),
    ).rejects.toMatchObject({ code: "workflow.external_step_not_external" });

    expect(await work(db, ["step"])).toEqual(["step"]);
    steps = await runSteps(db, run.id);
    expect(steps.map((s) => s.status)).toEqual(["SUCCEEDED", "SUCCEEDED"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
  });

  it("reports WAITING_FOR_EXTERNAL when only gates remain", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("only.gate", {})
        .step(WorkflowStepEnqueueBuilder.tryExternal("gate", {}))
        .build(),
    );
    expect(run.status).toBe("WAITING_FOR_EXTERNAL");
  });

  it("appends steps into a live run through an open window, idempotently", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("append.flow", {})
        .step(WorkflowStepEnqueueBuilder.tryExternal("window", {}))
        .step(WorkflowStepEnqueueBuilder.tryJob("seed", "step", {}))
        .build(),
    );
    const appended = {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      mutationKey: "batch-1",
      appendWindowStepKey: "window",
      steps: [
        WorkflowStepEnqueueBuilder.tryJob("extra", "step", { n: 1 }).dependsOnSuccess(["seed"]).build(),
        WorkflowStepEnqueueBuilder.tryJob("after-window", "step", { n: 2 }).dependsOnTerminal(["window"]).build(),
      ],
    };
    const result = await appendWorkflowSteps(db, appended);
    expect(result.outcome).toBe("APPENDED");
    expect(result.appendedSteps.map((s) => [s.stepKey, s.status])).toEqual([
      ["extra", "BLOCKED"],
      ["after-window", "BLOCKED"],
    ]);
    expect((await appendWorkflowSteps(db, appended)).outcome).toBe("ALREADY_APPLIED");
    await expect(
      appendWorkflowSteps(db, {
        ...appended,
        steps: [WorkflowStepEnqueueBuilder.tryJob("other", "step", {}).build()],
      }),
    ).rejects.toMatchObject({ code: "workflow.append_conflicting_retry" });

    expect((await work(db, ["step"])).length).toBe(2); // seed, then extra
    await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      stepKey: "window",
      terminalStatus: "SUCCEEDED",
    });
    expect(await work(db, ["step"])).toEqual(["step"]);
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
    await expect(
      appendWorkflowSteps(db, {
        ...appended,
        mutationKey: "late",
        steps: [WorkflowStepEnqueueBuilder.tryJob("late", "step", {}).build()],
      }),
    ).rejects.toMatchObject({ code: "workflow.append_window_not_open" });
  });

  it("cancels a run: pending steps, their jobs and open gates", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("cancel.flow", {})
        .step(WorkflowStepEnqueueBuilder.tryJob("a", "step", {}))
        .step(WorkflowStepEnqueueBuilder.tryExternal("gate", {}))
        .step(WorkflowStepEnqueueBuilder.tryJob("b", "step", {}).dependsOnSuccess(["a", "gate"]))
        .build(),
    );
    const canceled = await cancelWorkflowRun(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      reason: "user request",
    });
    expect(canceled.status).toBe("CANCELED");
    const steps = await runSteps(db, run.id);
    expect(steps.every((s) => s.status === "CANCELED")).toBe(true);
    expect(await work(db, ["step"])).toEqual([]);
    // Canceling again, or completing the gate, changes nothing.
    expect((await cancelWorkflowRun(db, { scope: ALL_ORGANIZATIONS, workflowRunId: run.id })).status).toBe("CANCELED");
    await expect(
      completeExternalWorkflowStep(db, {
        scope: ALL_ORGANIZATIONS,
        workflowRunId: run.id,
        stepKey: "gate",
        terminalStatus: "SUCCEEDED",
      }),
    ).rejects.toMatchObject({ code: "workflow.external_step_conflicting_completion_retry" });
  });

  it("refuses unknown or disabled job types and invalid DAGs, writing nothing", async () => {
    await defineJob(db, "disabled.step", { isEnabled: false });
    const before = await ledgerCounts(db);
    await expect(
      enqueueWorkflowRun(db, WorkflowDagBuilder.new("bad", {}).job("a", "nope", {}).build()),
    ).rejects.toMatchObject({ code: "workflow.definition_not_found_or_disabled" });
    await expect(
      enqueueWorkflowRun(
        db,
        WorkflowDagBuilder.new("bad", {}).job("a", "step", {}).job("b", "disabled.step", {}).build(),
      ),
    ).rejects.toMatchObject({ code: "workflow.definition_not_found_or_disabled" });
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("leaves nothing when enqueued inside a rolled-back transaction", async () => {
    const before = await ledgerCounts(db);
    await expect(
      db.transaction(async (tx) => {
        await enqueueWorkflowRun(tx, profileResearch("rolled-back"));
        throw new Error("application failed");
      }),
    ).rejects.toThrow("application failed");
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("scopes reads and mutations by organization", async () => {
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("scoped", {})
        .organizationId(ORG_A)
        .step(WorkflowStepEnqueueBuilder.tryExternal("gate", {}))
        .build(),
    );
    expect(await getWorkflowRunById(db, run.id, { organizationId: ORG_B })).toBeNull();
    expect(await runSteps(db, run.id, { organizationId: ORG_B })).toEqual([]);
    expect((await listWorkflowRuns(db, { scope: { organizationId: ORG_B }, limit: 100 })).items).toEqual([]);
    expect(
      (await listWorkflowRuns(db, { scope: { organizationId: ORG_A }, limit: 100 })).items.map((r) => r.id),
    ).toEqual([run.id]);
    await expect(
      completeExternalWorkflowStep(db, {
        workflowRunId: run.id,
        scope: { organizationId: ORG_B },
        stepKey: "gate",
        terminalStatus: "SUCCEEDED",
      }),
    ).rejects.toMatchObject({ code: "workflow.external_step_not_found" });
    await expect(
      cancelWorkflowRun(db, { workflowRunId: run.id, scope: { organizationId: ORG_B } }),
    ).rejects.toMatchObject({
      code: "workflow.run_not_found",
    });
  });
});
