// A fan-out/fan-in workflow: crawl a profile, then classify and score it in parallel, then
// persist once both are done. The engine releases each step when its prerequisites succeed;
// no handler enqueues another job and nothing polls for completion.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/workflow-dag.ts
import { ALL_ORGANIZATIONS, WorkflowDagBuilder } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import { createDb, enqueueWorkflowRun, getWorkflowRunById, listWorkflowSteps, migrate } from "runledger/store";
import { runUntilFinished } from "./run-until-finished.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

type ProfilePayload = { profile_id: string };

const catalog = new JobCatalog()
  .job("profiles.crawl", async (payload) => {
    console.log(`crawl    ${(payload as ProfilePayload).profile_id}`);
  })
  .job("profiles.classify", async (payload) => {
    console.log(`classify ${(payload as ProfilePayload).profile_id}`);
  })
  .job("profiles.score", async (payload) => {
    console.log(`score    ${(payload as ProfilePayload).profile_id}`);
  })
  .job("profiles.persist", async (payload) => {
    console.log(`persist  ${(payload as ProfilePayload).profile_id}`);
  });

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  // `catalog.workflow` is `WorkflowDagBuilder.new` that also refuses job types the catalog lacks.
  const run = WorkflowDagBuilder.new("profiles.research", { source: "api" })
    .idempotencyKey("profile:p_123:research")
    .job("crawl", "profiles.crawl", { profile_id: "p_123" })
    .job("classify", "profiles.classify", { profile_id: "p_123" })
    .afterSuccess("classify", ["crawl"])
    .job("score", "profiles.score", { profile_id: "p_123" })
    .afterSuccess("score", ["crawl"])
    .job("persist", "profiles.persist", { profile_id: "p_123" })
    .afterSuccess("persist", ["classify", "score"])
    .build();

  const workflowRun = await enqueueWorkflowRun(db, run);
  console.log(`workflow run ${workflowRun.id} (${workflowRun.workflowType}) is ${workflowRun.status}`);

  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
    .withCatalog(catalog)
    .build();
  await runUntilFinished(db, supervisor, workflowRun.id);

  const finished = await getWorkflowRunById(db, workflowRun.id, ALL_ORGANIZATIONS);
  console.log(`run status: ${finished?.status}`);
  for (const step of (
    await listWorkflowSteps(db, { workflowRunId: workflowRun.id, scope: ALL_ORGANIZATIONS, limit: 100 })
  ).items) {
    console.log(`  step ${step.stepKey.padEnd(8)} ${step.status}`);
  }
  if (finished?.status !== "SUCCEEDED") process.exitCode = 1;
} finally {
  await db.$runledger.close();
}
