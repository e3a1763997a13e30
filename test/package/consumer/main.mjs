// A consumer of the packed runledger tarball, run by test/package/consumer.test.ts from a scratch
// project where runledger is installed under node_modules. argv: URL of an empty database.
// Prints one line of JSON that the test asserts on.
import { ALL_ORGANIZATIONS, WorkflowDagBuilder } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import * as appApi from "runledger/store";
import {
  createDb,
  enqueueWorkflowRun,
  ensureSchemaCompatible,
  getJobById,
  getWorkflowRunById,
  inspectSchema,
  listWorkflowSteps,
  MIGRATIONS_FOLDER,
  migrate,
} from "runledger/store";
import * as workerApi from "runledger/store/worker";
import * as v from "valibot";

const [url] = process.argv.slice(2);
if (!url) throw new Error("usage: node main.mjs <database-url>");

const db = createDb(url, { max: 4 });
const ran = [];
try {
  const before = await inspectSchema(db);
  const migrated = await migrate(db);
  const compatible = await ensureSchemaCompatible(db);

  const catalog = new JobCatalog()
    .job(
      "consumer.add",
      async (payload) => {
        ran.push(`add:${payload.a + payload.b}`);
      },
      { payload: v.object({ a: v.number(), b: v.number() }) },
    )
    .job("consumer.echo", async (payload) => {
      ran.push(`echo:${payload.text}`);
    });
  await catalog.syncDefinitions(db);

  const jobs = [
    await catalog.enqueue(db, "consumer.add", { a: 2, b: 3 }),
    await catalog.enqueue(db, "consumer.echo", { text: "hello" }),
  ];
  const run = await enqueueWorkflowRun(
    db,
    WorkflowDagBuilder.new("consumer.flow", { source: "consumer" })
      .job("first", "consumer.add", { a: 20, b: 22 })
      .job("second", "consumer.echo", { text: "after first" })
      .afterSuccess("second", ["first"])
      .build(),
  );

  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 50, leaseTtlSeconds: 10 }))
    .withCatalog(catalog)
    .build();
  supervisor.start();
  const deadline = Date.now() + 20_000;
  let finalJobs = [];
  let finalRun = null;
  for (;;) {
    finalJobs = await Promise.all(jobs.map((job) => getJobById(db, job.id, ALL_ORGANIZATIONS)));
    finalRun = await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS);
    const jobsDone = finalJobs.every((job) => ["SUCCEEDED", "DEAD_LETTERED", "CANCELED"].includes(job?.status));
    const runDone = ["SUCCEEDED", "COMPLETED_WITH_ERRORS", "CANCELED"].includes(finalRun?.status);
    if (jobsDone && runDone) break;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const shutdown = await supervisor.shutdown(5_000);
  const { items: steps } = await listWorkflowSteps(db, { workflowRunId: run.id, scope: ALL_ORGANIZATIONS, limit: 100 });

  const summary = {
    migrationsFolder: MIGRATIONS_FOLDER,
    before: before.state,
    migrated: migrated.state,
    compatible: compatible.state,
    bundled: compatible.bundled,
    storeSubpaths: {
      appHasLifecycle: "claimRunnableJobs" in appApi,
      workerHasLifecycle: typeof workerApi.claimRunnableJobs === "function",
    },
    jobs: finalJobs.map((job) => ({ jobType: job?.jobType, status: job?.status })),
    workflow: {
      status: finalRun?.status,
      steps: steps.map((step) => ({ stepKey: step.stepKey, status: step.status })),
    },
    ran,
    abandoned: shutdown.abandoned,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await db.$runledger.close();
}
