import { WorkflowStepEnqueueBuilder as Step, WorkflowRunEnqueueBuilder } from "../../src/core/index.ts";
import {
  type Executor,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobSuccess } from "../../src/store/worker.ts";
import { defineJob } from "../support/factories.ts";

/*
 * What the dashboard tests look at: two organizations. A has 15 pending jobs (12 email.send,
 * 3 reports.build), 2 running (thumbnails.render), 2 dead-lettered (reports.build), 4 succeeded
 * and a workflow run waiting at a gate; B has jobs, a run and a schedule of its own, with names
 * that must never appear on A's pages.
 */

export const ORG_A = "0190f0a0-0000-7000-8000-0000000000aa";
export const ORG_B = "0190f0a0-0000-7000-8000-0000000000bb";

export interface Seeded {
  /** Pending email.send jobs of A (the first four enqueued succeeded). */
  emailJobs: string[];
  deadJobs: string[];
  keyedReport: string;
  run: string;
  bJob: string;
  bRun: string;
}

async function claim(db: Executor, jobType: string, workerId: string, limit: number) {
  const claimed = await claimJobs(db, { workerId, leaseSeconds: 300, limit, jobTypes: [jobType] });
  return claimed.map((job) => ({ jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId }));
}

export async function seedDashboard(db: Executor): Promise<Seeded> {
  await defineJob(db, "email.send", { maxAttempts: 3 });
  await defineJob(db, "reports.build", { maxAttempts: 1 });
  await defineJob(db, "thumbnails.render");
  for (const type of ["profiles.crawl", "profiles.persist", "profiles.cleanup", "secret.b-only"]) {
    await defineJob(db, type);
  }

  const email = await enqueueJobs(
    db,
    Array.from({ length: 16 }, (_, i) => ({
      jobType: "email.send",
      organizationId: ORG_A,
      payload: { to: `user${i}@a.test` },
    })),
  );
  for (const lease of await claim(db, "email.send", "worker-a1", 4)) await completeJobSuccess(db, { lease });

  await enqueueJobs(
    db,
    Array.from({ length: 4 }, (_, i) => ({
      jobType: "reports.build",
      organizationId: ORG_A,
      payload: { month: i + 1 },
    })),
  );
  const keyed = await enqueueJob(db, {
    jobType: "reports.build",
    organizationId: ORG_A,
    idempotencyKey: "report:2026-12",
    payload: { month: 12, apiToken: "tok_live_secret" },
  });
  const dead = await claim(db, "reports.build", "worker-a2", 2);
  for (const lease of dead) {
    await completeJobFailure(db, {
      lease,
      kind: "TERMINAL",
      code: "report.source_missing",
      message: "no data for month",
    });
  }

  await enqueueJobs(db, [
    { jobType: "thumbnails.render", organizationId: ORG_A },
    { jobType: "thumbnails.render", organizationId: ORG_A },
  ]);
  await claim(db, "thumbnails.render", "worker-a1", 2);

  const run = await enqueueWorkflowRun(db, {
    ...WorkflowRunEnqueueBuilder.tryNew("profiles.research", { profile: "p_123" })
      .step(Step.tryJob("crawl", "profiles.crawl", { profile: "p_123" }))
      .step(Step.tryExternal("approve", {}).dependsOnSuccess(["crawl"]))
      .step(Step.tryJob("persist", "profiles.persist", {}).dependsOnSuccess(["approve"]))
      .step(Step.tryJob("cleanup", "profiles.cleanup", {}).dependsOnTerminal(["approve"]))
      .build(),
    organizationId: ORG_A,
  });
  for (const lease of await claim(db, "profiles.crawl", "worker-a1", 1)) await completeJobSuccess(db, { lease });

  const bJobs = await enqueueJobs(
    db,
    Array.from({ length: 3 }, () => ({ jobType: "secret.b-only", organizationId: ORG_B, payload: { owner: "b" } })),
  );
  const bRun = await enqueueWorkflowRun(db, {
    ...WorkflowRunEnqueueBuilder.tryNew("b.private-flow", {}).step(Step.tryExternal("b-gate", {})).build(),
    organizationId: ORG_B,
  });
  await upsertJobSchedule(db, {
    name: "b-nightly",
    jobType: "secret.b-only",
    organizationId: ORG_B,
    cronExpr: "0 0 3 * * *",
    nextFireAt: new Date(Date.now() + 3_600_000),
  });
  await upsertJobSchedule(db, {
    name: "a-hourly-digest",
    jobType: "email.send",
    organizationId: ORG_A,
    cronExpr: "0 0 * * * *",
    nextFireAt: new Date(Date.now() + 600_000),
    payloadTemplate: { digest: true },
  });

  return {
    emailJobs: email.slice(4).map((j) => j.id),
    deadJobs: dead.map((l) => l.jobId),
    keyedReport: keyed.id,
    run: run.id,
    bJob: bJobs[0]!.id,
    bRun: bRun.id,
  };
}

/** The pending count A's overview must show. */
export const A_PENDING = 12 + 3;
