// Retrying a failed workflow run after a fix. The import step meets a malformed row and fails
// terminally, so the report after it is canceled and the run ends COMPLETED_WITH_ERRORS. Once the
// row is fixed, `retryWorkflowRun` runs the import's job again as its next run and puts the
// report back to waiting; the import resumes from its last checkpoint instead of starting over,
// and the run finishes SUCCEEDED. The workers keep running throughout.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/retry-workflow.ts
import { ALL_ORGANIZATIONS, JobFailure, WorkflowDagBuilder } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import {
  createDb,
  enqueueWorkflowRun,
  listWorkflowSteps,
  migrate,
  type RunledgerDb,
  retryWorkflowRun,
  waitForWorkflowRun,
} from "runledger/store";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

// The application's data: row 4 is malformed until someone fixes it.
const rows = [
  { id: 1, amount: "10.00" },
  { id: 2, amount: "4.50" },
  { id: 3, amount: "7.25" },
  { id: 4, amount: "12,50" },
  { id: 5, amount: "3.10" },
];
let imported = 0;

const catalog = new JobCatalog()
  .job("orders.import", async (_payload, context) => {
    // Where an earlier attempt (or the failed run, when a workflow retry keeps it) left off.
    const start = (context.previousCheckpoint as { next: number } | null)?.next ?? 0;
    if (start > 0) console.log(`import   resuming at row ${start + 1} (run ${context.runNumber})`);
    for (let i = start; i < rows.length; i++) {
      const row = rows[i]!;
      if (!/^\d+\.\d\d$/.test(row.amount)) {
        throw JobFailure.terminal("orders.bad_row", `row ${row.id}: amount "${row.amount}" is not a number`);
      }
      imported++;
      console.log(`import   row ${row.id}: ${row.amount}`);
      await context.checkpoint({ next: i + 1 });
    }
  })
  .job("orders.report", async () => {
    console.log(`report   ${imported} rows imported`);
  });

async function printSteps(db: RunledgerDb, runId: string) {
  for (const step of (await listWorkflowSteps(db, { workflowRunId: runId, scope: ALL_ORGANIZATIONS, limit: 100 }))
    .items) {
    const why = step.lastErrorCode ? ` (${step.lastErrorCode}: ${step.lastErrorMessage})` : "";
    console.log(`  step ${step.stepKey.padEnd(7)} ${step.status}${why}`);
  }
}

const db = createDb(url);
const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
  .withCatalog(catalog)
  .build();
try {
  await migrate(db);
  await catalog.syncDefinitions(db);
  supervisor.start();

  const run = await enqueueWorkflowRun(
    db,
    WorkflowDagBuilder.new("orders.daily", {})
      .job("import", "orders.import", {})
      .job("report", "orders.report", {})
      .afterSuccess("report", ["import"])
      .build(),
  );
  console.log(`workflow run ${run.id} (${run.workflowType}) is ${run.status}`);

  // Woken by the notification the run's last step sends when it finishes; no polling loop here.
  const failed = await waitForWorkflowRun(db, run.id, { scope: ALL_ORGANIZATIONS, timeoutMs: 30_000 });
  console.log(`run status: ${failed.status}`);
  await printSteps(db, run.id);

  rows[3]!.amount = "12.50";
  const retry = await retryWorkflowRun(db, {
    workflowRunId: run.id,
    scope: ALL_ORGANIZATIONS,
    reason: "row 4 fixed",
    mutationKey: "fix-row-4",
  });
  const keys = (steps: { stepKey: string }[]) => steps.map((s) => s.stepKey).join(", ") || "none";
  console.log(
    `retry ${retry.outcome}: retried ${keys(retry.retriedSteps)}; waiting again ${keys(retry.reopenedSteps)}`,
  );

  const done = await waitForWorkflowRun(db, run.id, { scope: ALL_ORGANIZATIONS, timeoutMs: 30_000 });
  console.log(`run status: ${done.status}`);
  await printSteps(db, run.id);
  if (done.status !== "SUCCEEDED") process.exitCode = 1;
} finally {
  await supervisor.shutdown(5_000);
  await db.$runledger.close();
}
