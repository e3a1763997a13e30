// A complete worker process: check the schema, sync the catalog's definitions, run the
// supervisor until SIGINT or SIGTERM, and always close the pool. A second signal shortens the
// shutdown instead of killing a job mid-way. A failed loop or a shutdown that misses its deadline
// is reported and ends the process with exit code 1.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/worker.ts
//   RUNLEDGER_MIGRATE=1 ...   to apply migrations at startup instead of only checking them
import { RunledgerError } from "runledger/core";
import { JobCatalog, JobsConfig, Supervisor, shutdownOnSignals } from "runledger/runtime";
import { createDb, ensureSchemaCompatible, migrate } from "runledger/store";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/app");
  process.exit(2);
}

// In an application this catalog lives in a module shared with the web process, which enqueues.
const catalog = new JobCatalog().job(
  "email.send",
  async (payload, context) => {
    const { to, subject } = payload as { to: string; subject: string };
    // Pass context.signal to I/O: it aborts on timeout, cancellation and shutdown.
    context.signal.throwIfAborted();
    console.log(`sent "${subject}" to ${to} (job ${context.jobId}, attempt ${context.attempt})`);
  },
  { maxAttempts: 5, timeoutSeconds: 60 },
);

// Listen before anything slow happens, so a signal during startup still stops the worker cleanly.
// Running jobs get 30 s after SIGINT or SIGTERM, 5 s after a second one.
const shutdown = shutdownOnSignals({ timeoutMs: 30_000, secondSignalTimeoutMs: 5_000 });

const db = createDb(url);
try {
  if (process.env.RUNLEDGER_MIGRATE === "1") {
    await migrate(db);
  } else {
    // Read-only: migrations normally run at deploy time, not in every worker.
    await ensureSchemaCompatible(db);
  }
  await catalog.syncDefinitions(db);

  const config = JobsConfig.fromEnv();
  // Failing loops back off and log one line per state change ("worker: database unreachable …",
  // "worker: reconnected …") to stderr; pass pino or console to `withLogger` to route them.
  const supervisor = Supervisor.builder(db, config).withCatalog(catalog).build();
  supervisor.on("job:dead_lettered", (e) => console.error(`dead-lettered ${e.jobType} ${e.jobId}: ${e.code}`));

  supervisor.start();
  console.log(`worker ${config.workerId} ready: ${catalog.jobTypes().join(", ")}`);

  // Rejects when a loop failed or exited early, or the shutdown missed its deadline.
  const report = await shutdown.run(supervisor);
  console.log(`worker stopped (abandoned jobs: ${report.abandoned.length})`);
} catch (error) {
  const what = error instanceof RunledgerError ? `${error.code}: ${error.message}` : error;
  console.error("worker failed:", what);
  process.exitCode = 1;
} finally {
  shutdown.close();
  await db.$runledger.close();
}
