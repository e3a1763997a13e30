// A cron schedule: the supervisor's scheduler turns each due slot into one job and its worker runs
// it. Any number of processes may run schedulers against one database; each slot fires once.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/schedule-job.ts
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import { createDb, getJobById, listJobSchedules, migrate, type RunledgerDb, upsertJobSchedule } from "runledger/store";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

const catalog = new JobCatalog().job("reports.build", async (payload) => {
  console.log(`building report with payload ${JSON.stringify(payload)}`);
});

/** Run a scheduler and a worker until the due slot has fired and its job has succeeded. */
async function runDueSlot(db: RunledgerDb) {
  // One supervisor runs both the scheduler loop and the worker loop. Stop once the fired job is done.
  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
    .withCatalog(catalog)
    .build();
  const done = new AbortController();
  let firedJobId: string | undefined;
  supervisor.on("scheduler:fired", (event) => {
    firedJobId = event.jobId;
    console.log(`fired slot ${event.scheduledFor.toISOString()} as job ${event.jobId}`);
  });
  supervisor.on("job:succeeded", (event) => {
    if (event.jobId === firedJobId) done.abort();
  });
  await supervisor.runUntilShutdown(AbortSignal.any([done.signal, AbortSignal.timeout(30_000)]), 5_000);

  const job = firedJobId === undefined ? null : await getJobById(db, firedJobId);
  console.log(`job ${job?.id}: ${job?.jobType} ${job?.status} (stage ${job?.stage})`);
  if (job?.status !== "SUCCEEDED") process.exitCode = 1;
}

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  // Hourly at minute 0 (six fields, seconds first, UTC). `nextFireAt` in the past makes the first
  // slot due now; re-running this upsert keeps the schedule's cursor and an operator's pause.
  const schedule = await upsertJobSchedule(
    db,
    catalog.jobSchedule({
      name: "reports.hourly",
      jobType: "reports.build",
      cronExpr: "0 0 * * * *",
      nextFireAt: new Date(Date.now() - 1000),
      payloadTemplate: { kind: "hourly" },
    }),
  );
  console.log(`schedule ${schedule.name} (${schedule.cronExpr}) next fires at ${schedule.nextFireAt.toISOString()}`);

  if (schedule.nextFireAt.getTime() > Date.now()) {
    // A re-run within the hour: the upsert kept the cursor, so nothing is due yet.
    console.log("no slot is due yet; run again after the next fire time");
  } else {
    await runDueSlot(db);
  }
  const current = (await listJobSchedules(db, { limit: 100 })).find((s) => s.name === "reports.hourly");
  console.log(`next fire at ${current?.nextFireAt.toISOString()}`);
} finally {
  await db.$runledger.close();
}
