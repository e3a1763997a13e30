// Enqueue one job with an idempotency key, then retry the same request and get the same job back.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/enqueue-job.ts
import { ALL_ORGANIZATIONS } from "runledger/core";
import { JobCatalog } from "runledger/runtime";
import { createDb, enqueueJob, getJobById, migrate } from "runledger/store";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

// A job type must have a definition row before it can be enqueued; the catalog writes it.
// (A worker process would register the real handler; this program only enqueues.)
const catalog = new JobCatalog().job("email.send", async () => {}, { maxAttempts: 5 });

const db = createDb(url);
try {
  await migrate(db);
  await catalog.syncDefinitions(db);

  const request = {
    jobType: "email.send",
    payload: { to: "ada@example.com", subject: "Welcome" },
    // Derive the key from what the job is about, so a retried HTTP request or a redelivered
    // message cannot enqueue the same email twice.
    idempotencyKey: "welcome-email:user-42",
  };
  const first = await enqueueJob(db, request);
  const retry = await enqueueJob(db, request);
  console.log(`enqueued job ${first.id} (created: ${first.created})`);
  console.log(`retried with the same key: job ${retry.id} (created: ${retry.created})`);
  console.log(`same job: ${first.id === retry.id}`);

  const job = await getJobById(db, first.id, ALL_ORGANIZATIONS);
  console.log(`status: ${job?.status}, attempts allowed: ${job?.maxAttempts}`);
} finally {
  await db.$runledger.close();
}
