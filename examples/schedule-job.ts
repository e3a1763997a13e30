// A cron schedule in a time zone: the supervisor's scheduler turns each due slot into one job and
// its worker runs it; a backfill fires the slots of past hours, once however often it is run. Any
// number of processes may run schedulers against one database; each slot fires once.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/schedule-job.ts
import { ALL_ORGANIZATIONS } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import {
  backfillJobSchedule,
  createDb,
  getJobById,
  getJobSchedule,
  migrate,
  type RunledgerDb,
  upsertJobSchedule,
} from "runledger/store";
import * as v from "valibot";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

const HOUR = 3_600_000;

// The payload is the schedule's template as it is, so a strict schema holds; which slot a job
// was fired for is in `context.schedule`.
const catalog = new JobCatalog().job(
  "reports.build",
  async (payload, context) => {
    const slot = context.schedule?.scheduledFor.toISOString();
    console.log(`building the ${payload.kind} report for ${context.schedule?.name}, slot ${slot}`);
  },
  { payload: v.strictObject({ kind: v.string() }) },
);

/** Run a scheduler and a worker until the due slot has fired and every job in `jobIds` has succeeded. */
async function runUntilDone(db: RunledgerDb, jobIds: Set<string>, expectFire: boolean) {
  const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
    .withCatalog(catalog)
    .build();
  const done = new AbortController();
  let fired = !expectFire;
  const finish = () => {
    if (fired && jobIds.size === 0) done.abort();
  };
  supervisor.on("scheduler:fired", (event) => {
    console.log(`fired slot ${event.scheduledFor.toISOString()} as job ${event.jobId}`);
    jobIds.add(event.jobId);
    fired = true;
  });
  supervisor.on("job:succeeded", (event) => {
    jobIds.delete(event.jobId);
    finish();
  });
  await supervisor.runUntilShutdown(AbortSignal.any([done.signal, AbortSignal.timeout(30_000)]), 5_000);
  if (jobIds.size > 0 || !fired) process.exitCode = 1;
}

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  // Hourly at minute 0, Berlin time (six fields, seconds first). The first slot is this hour's,
  // already due; re-running this upsert keeps the cursor and an operator's pause.
  const thisHour = new Date(Math.floor(Date.now() / HOUR) * HOUR);
  const schedule = await upsertJobSchedule(
    db,
    catalog.jobSchedule({
      name: "reports.hourly",
      jobType: "reports.build",
      cronExpr: "0 0 * * * *",
      timezone: "Europe/Berlin",
      // No second report while one is still pending or running.
      overlapPolicy: "SKIP",
      // After a downtime, the slots of the last three hours still fire, each once.
      catchupWindowSeconds: 3 * 3600,
      nextFireAt: thisHour,
      payloadTemplate: { kind: "hourly" },
    }),
  );
  console.log(`schedule ${schedule.name} (${schedule.cronExpr}, ${schedule.timezone}, ${schedule.overlapPolicy})`);

  // The three hours before: one job per slot, and none the second time.
  const interval = { name: "reports.hourly", from: new Date(thisHour.getTime() - 3 * HOUR), to: thisHour };
  const backfill = await backfillJobSchedule(db, interval, ALL_ORGANIZATIONS);
  console.log(`backfill: ${backfill.created.length} created, ${backfill.existing} already there`);
  const again = await backfillJobSchedule(db, interval, ALL_ORGANIZATIONS);
  console.log(`backfill again: ${again.created.length} created, ${again.existing} already there`);

  const due = schedule.nextFireAt.getTime() <= Date.now();
  const jobIds = new Set(backfill.created.map((c) => c.jobId));
  if (due || jobIds.size > 0) await runUntilDone(db, jobIds, due);
  if (!due) console.log("this hour's slot has fired already; run again after the next fire time");

  const current = await getJobSchedule(db, "reports.hourly", ALL_ORGANIZATIONS, { upcoming: 2 });
  if (current?.lastJobId) {
    const job = await getJobById(db, current.lastJobId, ALL_ORGANIZATIONS);
    console.log(`job ${job?.id}: ${job?.jobType} ${job?.status} (stage ${job?.stage})`);
  }
  console.log(`next fire at ${current?.upcoming[0]?.fireAt.toISOString()}`);
} finally {
  await db.$runledger.close();
}
