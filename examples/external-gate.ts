// An external approval gate: the refund step waits until someone (a person, an API callback)
// completes the "approve" step. Nothing runs the refund before that, and nothing polls for it.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/external-gate.ts

import { ALL_ORGANIZATIONS, WorkflowStepEnqueueBuilder as Step, WorkflowRunEnqueueBuilder } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import {
  completeExternalWorkflowStep,
  createDb,
  enqueueWorkflowRun,
  getWorkflowRunById,
  listWorkflowSteps,
  migrate,
  type RunledgerDb,
} from "runledger/store";
import * as v from "valibot";
import { runUntilFinished } from "./run-until-finished.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

const catalog = new JobCatalog().job(
  "payments.refund",
  async (payload) => {
    console.log(`refunding ${payload.amount}`);
  },
  { payload: v.object({ amount: v.number() }) },
);

async function printSteps(db: RunledgerDb, runId: string) {
  const run = await getWorkflowRunById(db, runId, ALL_ORGANIZATIONS);
  console.log(`run status: ${run?.status}`);
  for (const step of (await listWorkflowSteps(db, { workflowRunId: runId, scope: ALL_ORGANIZATIONS, limit: 100 }))
    .items) {
    const reason = step.statusReason && step.statusReason !== step.status ? ` (${step.statusReason})` : "";
    console.log(`  step ${step.stepKey.padEnd(8)} ${step.status}${reason}`);
  }
  return run;
}

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  const workflowRun = await enqueueWorkflowRun(
    db,
    WorkflowRunEnqueueBuilder.tryNew("refund.flow", { order: "o_789" })
      .idempotencyKey("refund:o_789")
      .step(Step.tryExternal("approve", { amount: 120 }))
      // A catalog step: its payload is type-checked and validated against the job's schema.
      .step(catalog.workflowStep("refund", "payments.refund", { amount: 120 }).dependsOnSuccess(["approve"]))
      .build(),
  );
  console.log(`workflow run ${workflowRun.id} enqueued`);
  await printSteps(db, workflowRun.id);

  // The worker runs in the background; the refund step stays BLOCKED until the gate opens.
  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
    .withCatalog(catalog)
    .build();
  const running = runUntilFinished(db, supervisor, workflowRun.id);

  // In an application this is the approval endpoint or webhook handler.
  await completeExternalWorkflowStep(db, {
    scope: ALL_ORGANIZATIONS,
    workflowRunId: workflowRun.id,
    stepKey: "approve",
    terminalStatus: "SUCCEEDED",
    statusReason: "approved by alice",
  });
  console.log("approval recorded");

  await running;
  const finished = await printSteps(db, workflowRun.id);
  if (finished?.status !== "SUCCEEDED") process.exitCode = 1;
} finally {
  await db.$runledger.close();
}
