// Flow control: every `tenant:<id>` key runs at most 2 jobs at once, across all workers, while a
// worker with 10 slots drains 3 tenants' jobs; a paused type waits until it is resumed.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/flow-control.ts
import { JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import {
  createDb,
  enqueueJobs,
  getFlowControlState,
  migrate,
  pauseJobType,
  resumeJobType,
  setKeyLimit,
} from "runledger/store";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

let built = 0;
let mailed = false;
const running = new Map<string, number>();
const most = new Map<string, number>();
const catalog = new JobCatalog()
  .job("report.build", async (payload) => {
    const { tenant } = payload as { tenant: string };
    running.set(tenant, (running.get(tenant) ?? 0) + 1);
    most.set(tenant, Math.max(most.get(tenant) ?? 0, running.get(tenant)!));
    await new Promise((resolve) => setTimeout(resolve, 50));
    running.set(tenant, running.get(tenant)! - 1);
    built++;
  })
  .job("report.mail", async () => {
    mailed = true;
  });

const db = createDb(url, { max: 5 });
const until = async (what: () => boolean) => {
  while (!what()) await new Promise((resolve) => setTimeout(resolve, 50));
};

try {
  await migrate(db);
  await catalog.syncDefinitions(db);
  await setKeyLimit(db, { pattern: "tenant:*", maxConcurrency: 2 });
  await pauseJobType(db, { jobType: "report.mail" });

  const tenants = ["tenant:a", "tenant:b", "tenant:c"];
  await enqueueJobs(db, [
    ...tenants.flatMap((tenant) =>
      Array.from({ length: 8 }, () => ({ jobType: "report.build", payload: { tenant }, concurrencyKey: tenant })),
    ),
    { jobType: "report.mail" },
  ]);

  const supervisor = Supervisor.builder(db, JobsConfig.from({ maxGlobalConcurrency: 10, pollIntervalMs: 100 }))
    .withCatalog(catalog)
    .build();
  supervisor.start();
  await until(() => built === tenants.length * 8);
  for (const tenant of tenants) console.log(`${tenant}: at most ${most.get(tenant)} running`);

  const state = await getFlowControlState(db);
  console.log(
    `paused: ${state.jobTypes
      .filter((d) => d.pausedAt !== null)
      .map((d) => d.jobType)
      .join(", ")}`,
  );
  console.log(`report.mail ran while paused: ${mailed}`);
  await resumeJobType(db, { jobType: "report.mail" });
  await until(() => mailed);
  console.log("report.mail ran after resume");
  await supervisor.shutdown(10_000);
} finally {
  await db.$runledger.close();
}
