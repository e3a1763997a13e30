// OpenTelemetry end to end, in two processes: `enqueue` sends a job under an SDK of its own,
// `work` processes it under another; each prints its spans. The processing span links to the
// enqueue's span (same trace id and span id in its `links`), across processes, through the
// trace context stored with the job. The worker also serves a readiness probe on :8099/ready.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/opentelemetry.ts enqueue
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app npx tsx examples/opentelemetry.ts work
//
// An application uses its own exporter (OTLP to a collector, usually) instead of the console's.
import { createServer } from "node:http";
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { sql } from "drizzle-orm";
import { healthHandler, JobCatalog, JobsConfig, Supervisor } from "runledger/runtime";
import { createDb, enqueueJob, migrate, queryRows } from "runledger/store";

// Register the SDK before runledger does anything: without one, runledger records nothing.
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] }),
);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const reader = new PeriodicExportingMetricReader({
  exporter: new ConsoleMetricExporter(),
  exportIntervalMillis: 60_000,
});
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const url = process.env.DATABASE_URL;
const role = process.argv[2];
if (!url || (role !== "enqueue" && role !== "work")) {
  console.error("usage: DATABASE_URL=postgres://… npx tsx examples/opentelemetry.ts enqueue|work");
  process.exit(2);
}

const catalog = new JobCatalog().job("report.render", async (payload, jobContext) => {
  // Spans the handler starts are children of the job's processing span.
  const span = trace.getTracer("reports").startSpan("render pdf");
  console.log(`rendering ${(payload as { id: number }).id} (job ${jobContext.jobId})`);
  span.end();
});

const db = createDb(url);
try {
  if (role === "enqueue") {
    await migrate(db);
    await catalog.syncDefinitions(db);
    const { id } = await enqueueJob(db, { jobType: "report.render", payload: { id: 42 } });
    console.log(`enqueued ${id}`);
  } else {
    const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 200 }))
      .withCatalog(catalog)
      .withLogger(console) // state changes: "worker: database unreachable …", "worker: reconnected …"
      .withTelemetry({ spanRelationship: "link", queueMetrics: true })
      .build()
      .start();
    const probe = createServer(healthHandler(supervisor)).listen(8099);
    // Work until the queue of this example is empty, then stop.
    for (;;) {
      const left = await queryRows(
        db,
        sql`select 1 from runledger.job_queue where job_type = 'report.render' and finished_at is null limit 1`,
      );
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await supervisor.shutdown(10_000);
    probe.close();
    await reader.forceFlush();
  }
} finally {
  await db.$runledger.close();
}
