// Grow a running workflow: an external "window" step keeps the run open for additions, and
// `appendWorkflowSteps` adds steps (with their dependencies) while the window waits. Closing the
// window lets the steps that wait for it run.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/append-workflow-steps.ts
import { ALL_ORGANIZATIONS, WorkflowStepEnqueueBuilder as Step, WorkflowRunEnqueueBuilder } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import {
  appendWorkflowSteps,
  completeExternalWorkflowStep,
  createDb,
  enqueueWorkflowRun,
  getWorkflowRunById,
  listWorkflowSteps,
  migrate,
} from "runledger/store";
import { runUntilFinished } from "./run-until-finished.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

const catalog = new JobCatalog()
  .job("import.fetch", async () => {
    console.log("fetch: listed the files to import");
  })
  .job("import.file", async (payload) => {
    console.log(`file: imported ${(payload as { file: string }).file}`);
  })
  .job("import.report", async () => {
    console.log("report: every file imported");
  });

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  const workflowRun = await enqueueWorkflowRun(
    db,
    WorkflowRunEnqueueBuilder.tryNew("import.batch", {})
      .idempotencyKey("import:batch-7")
      .step(Step.tryJob("fetch", "import.fetch", {}))
      .step(Step.tryExternal("window", {}))
      .build(),
  );
  console.log(`workflow run ${workflowRun.id} enqueued with steps fetch and window`);

  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
    .withCatalog(catalog)
    .build();
  const running = runUntilFinished(db, supervisor, workflowRun.id);

  // While the window waits, add one step per file (after fetch) and a report that runs once every
  // file is imported and the window has closed. A retry with the same mutation key is a no-op.
  const files = ["a.csv", "b.csv"];
  const appended = await appendWorkflowSteps(db, {
    scope: ALL_ORGANIZATIONS,
    workflowRunId: workflowRun.id,
    mutationKey: "files:a,b",
    appendWindowStepKey: "window",
    steps: [
      ...files.map((file) => Step.tryJob(`file:${file}`, "import.file", { file }).dependsOnSuccess(["fetch"]).build()),
      Step.tryJob("report", "import.report", {})
        .dependsOnSuccess([...files.map((file) => `file:${file}`), "window"])
        .build(),
    ],
  });
  console.log(`append ${appended.outcome}: ${appended.appendedSteps.map((s) => s.stepKey).join(", ")}`);

  // No more additions: close the window.
  await completeExternalWorkflowStep(db, {
    scope: ALL_ORGANIZATIONS,
    workflowRunId: workflowRun.id,
    stepKey: "window",
    terminalStatus: "SUCCEEDED",
    statusReason: "all files listed",
  });
  console.log("window closed");

  await running;
  const finished = await getWorkflowRunById(db, workflowRun.id, ALL_ORGANIZATIONS);
  console.log(`run status: ${finished?.status}`);
  for (const step of (
    await listWorkflowSteps(db, { workflowRunId: workflowRun.id, scope: ALL_ORGANIZATIONS, limit: 100 })
  ).items) {
    console.log(`  step ${step.stepKey.padEnd(10)} ${step.status}`);
  }
  if (finished?.status !== "SUCCEEDED") process.exitCode = 1;
} finally {
  await db.$runledger.close();
}
