import { context, metrics, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, observeQueueMetrics, parseTraceContext, Supervisor } from "../../src/runtime/index.ts";
import { enqueueJob, enqueueJobs, enqueueWorkflowRun, getJobById, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { finished, startTs } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const { db, url } = await useTestDatabase();
await defineJob(db, "otel.ok");
await defineJob(db, "otel.flaky", { maxAttempts: 2 });
await defineJob(db, "inproc.ok");
await defineJob(db, "depth.job");
await defineJob(db, "untraced.job");

interface ChildSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  status: number;
}
interface ChildPoint {
  name: string;
  attributes: Record<string, unknown>;
  value: unknown;
}

async function storedTraceContext(jobId: string): Promise<string | null> {
  const [row] = await queryRows<{ trace_context: string | null }>(
    db,
    sql`select trace_context from runledger.job_queue where id = ${jobId}`,
  );
  return row!.trace_context;
}

describe("OpenTelemetry", () => {
  it("without a registered SDK, enqueue stores no trace context", async () => {
    const { id } = await enqueueJob(db, { jobType: "untraced.job" });
    const [batch] = await enqueueJobs(db, [{ jobType: "untraced.job" }, { jobType: "untraced.job" }]);
    expect(await storedTraceContext(id)).toBeNull();
    expect(await storedTraceContext(batch!.id)).toBeNull();
    await db.execute(sql`delete from runledger.job_queue where job_type = 'untraced.job'`);
  });

  describe("with an SDK", () => {
    const spans = new InMemorySpanExporter();
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    beforeAll(() => {
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    });
    afterAll(() => {
      trace.disable();
      context.disable();
      metrics.disable();
    });

    const sendSpan = (predicate: (span: ReadableSpan) => boolean) => {
      const found = spans.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER && predicate(s));
      expect(found).toBeDefined();
      return found!;
    };

    async function collect(): Promise<ChildPoint[]> {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) =>
        scope.metrics.flatMap((metric) =>
          metric.dataPoints.map((point) => ({
            name: metric.descriptor.name,
            attributes: point.attributes as Record<string, unknown>,
            value: point.value,
          })),
        ),
      );
    }

    it("links processing in another process to the enqueue in this one; retries and dead letters set error.type", async () => {
      const ok = await enqueueJob(db, { jobType: "otel.ok" });
      const flaky = await enqueueJob(db, { jobType: "otel.flaky" });
      const run = await enqueueWorkflowRun(
        db,
        WorkflowDagBuilder.new("otel.flow", {})
          .job("first", "otel.ok", {})
          .job("second", "otel.ok", {})
          .afterSuccess("second", ["first"])
          .build(),
      );

      const okSend = sendSpan((s) => s.attributes["messaging.message.id"] === ok.id);
      expect(okSend.name).toBe("send otel.ok");
      expect(okSend.attributes).toMatchObject({
        "messaging.system": "runledger",
        "messaging.operation.type": "send",
        "messaging.destination.name": "otel.ok",
      });
      const stored = parseTraceContext(await storedTraceContext(ok.id));
      expect(stored).toMatchObject({ traceId: okSend.spanContext().traceId, spanId: okSend.spanContext().spanId });
      const flakySend = sendSpan((s) => s.attributes["messaging.message.id"] === flaky.id);
      const flowSend = sendSpan((s) => s.attributes["runledger.workflow.run_id"] === run.id);
      expect(flowSend.name).toBe("send otel.flow");

      const child = startTs("test/fixtures/otel-worker.ts", [url, "link"]);
      const result = await finished(child);
      expect(result.code, result.stderr).toBe(0);
      const dump = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { spans: ChildSpan[]; points: ChildPoint[] };
      const processSpans = (jobId: string) =>
        dump.spans.filter((s) => s.name.startsWith("process ") && s.attributes["messaging.message.id"] === jobId);

      const [okProcess, ...more] = processSpans(ok.id);
      expect(more).toEqual([]);
      expect(okProcess).toMatchObject({
        name: "process otel.ok",
        kind: SpanKind.CONSUMER,
        links: [{ traceId: okSend.spanContext().traceId, spanId: okSend.spanContext().spanId }],
        attributes: {
          "messaging.system": "runledger",
          "messaging.operation.type": "process",
          "messaging.destination.name": "otel.ok",
          "runledger.attempt": 1,
          "runledger.run_number": 1,
        },
      });
      // A link, not a parent: processing is a trace of its own.
      expect(okProcess!.parentSpanId).toBeUndefined();
      expect(okProcess!.traceId).not.toBe(okSend.spanContext().traceId);
      expect(okProcess!.attributes["error.type"]).toBeUndefined();
      // The handler's own span is a child of the processing span.
      const work = dump.spans.find((s) => s.name === "handler work" && s.parentSpanId === okProcess!.spanId);
      expect(work?.traceId).toBe(okProcess!.traceId);

      const attempts = processSpans(flaky.id).sort(
        (a, b) => (a.attributes["runledger.attempt"] as number) - (b.attributes["runledger.attempt"] as number),
      );
      expect(attempts.map((s) => s.attributes["runledger.attempt"])).toEqual([1, 2]);
      for (const attempt of attempts) {
        expect(attempt.attributes["error.type"]).toBe("otel.flaky_failed");
        expect(attempt.status).toBe(SpanStatusCode.ERROR);
        expect(attempt.links).toEqual([
          { traceId: flakySend.spanContext().traceId, spanId: flakySend.spanContext().spanId },
        ]);
      }
      expect(attempts[0]!.attributes["runledger.dead_letter"]).toBeUndefined();
      expect(attempts[1]!.attributes["runledger.dead_letter"]).toBe(true);
      expect((await getJobById(db, flaky.id, ALL_ORGANIZATIONS))?.status).toBe("DEAD_LETTERED");

      // Both steps, the second released after the first finished, link to the workflow's enqueue.
      const steps = dump.spans.filter((s) => s.attributes["runledger.workflow.run_id"] === run.id);
      expect(steps).toHaveLength(2);
      expect(steps.map((s) => s.attributes["runledger.workflow.step_key"]).sort()).toEqual(["first", "second"]);
      for (const step of steps) {
        expect(step.links).toEqual([
          { traceId: flowSend.spanContext().traceId, spanId: flowSend.spanContext().spanId },
        ]);
      }

      const processed = dump.points.filter(
        (p) => p.name === "messaging.process.duration" && p.attributes["messaging.destination.name"] === "otel.ok",
      );
      expect(processed.find((p) => p.attributes["error.type"] === undefined)?.value).toMatchObject({ count: 3 });
      const failed = dump.points.find(
        (p) => p.name === "messaging.process.duration" && p.attributes["error.type"] === "otel.flaky_failed",
      );
      expect(failed?.value).toMatchObject({ count: 2 });
      const consumed = dump.points
        .filter((p) => p.name === "messaging.client.consumed.messages")
        .reduce((sum, p) => sum + (p.value as number), 0);
      expect(consumed).toBe(5);

      const sent = (await collect())
        .filter((p) => p.name === "messaging.client.sent.messages")
        .reduce((sum, p) => sum + (p.value as number), 0);
      expect(sent).toBeGreaterThanOrEqual(4); // 2 jobs + a workflow of 2 steps
    }, 120_000);

    it("makes the enqueue the parent with spanRelationship 'parent'; a workflow run's span covers enqueue to end", async () => {
      const supervisor = Supervisor.builder(
        db,
        JobsConfig.from({ workerId: "otel-parent", maxGlobalConcurrency: 2, pollIntervalMs: 50 }),
      )
        .withCatalog(new JobCatalog().job("inproc.ok", async () => {}))
        .withTelemetry({ spanRelationship: "parent", workflowRunSpans: true })
        .withLogger(null)
        .disableScheduler()
        .build()
        .start();
      try {
        const { id } = await enqueueJob(db, { jobType: "inproc.ok" });
        await waitFor(async () => (await getJobById(db, id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
          timeoutMs: 30_000,
        });
        const send = sendSpan((s) => s.attributes["messaging.message.id"] === id);
        const processing = await waitFor(() =>
          spans
            .getFinishedSpans()
            .find((s) => s.kind === SpanKind.CONSUMER && s.attributes["messaging.message.id"] === id),
        );
        expect(processing.spanContext().traceId).toBe(send.spanContext().traceId);
        expect(processing.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
        expect(processing.links).toEqual([]);

        const run = await enqueueWorkflowRun(
          db,
          WorkflowDagBuilder.new("inproc.flow", {})
            .job("a", "inproc.ok", {})
            .job("b", "inproc.ok", {})
            .afterSuccess("b", ["a"])
            .build(),
        );
        const runSend = sendSpan((s) => s.attributes["runledger.workflow.run_id"] === run.id);
        const runSpan = await waitFor(() => spans.getFinishedSpans().find((s) => s.name === "workflow inproc.flow"), {
          timeoutMs: 30_000,
          what: "the workflow run's span",
        });
        expect(runSpan.attributes).toMatchObject({
          "runledger.workflow.run_id": run.id,
          "runledger.workflow.status": "SUCCEEDED",
        });
        expect(runSpan.parentSpanContext?.spanId).toBe(runSend.spanContext().spanId);
        expect(runSpan.status.code).toBe(SpanStatusCode.UNSET);
        // It covers every step's processing.
        const steps = spans
          .getFinishedSpans()
          .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes["runledger.workflow.run_id"] === run.id);
        expect(steps).toHaveLength(2);
        const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
        for (const step of steps) {
          expect(ms(step.startTime)).toBeGreaterThanOrEqual(ms(runSpan.startTime) - 1);
          expect(ms(step.endTime)).toBeLessThanOrEqual(ms(runSpan.endTime) + 50);
        }
      } finally {
        await supervisor.shutdown(10_000);
      }
    }, 60_000);

    it("reports the seeded queue depth and oldest age as gauges", async () => {
      await enqueueJobs(
        db,
        Array.from({ length: 5 }, () => ({ jobType: "depth.job" })),
      );
      await enqueueJobs(db, [{ jobType: "depth.job", nextRunAt: new Date(Date.now() + 3_600_000) }]);
      const stop = observeQueueMetrics(db, { sampleIntervalMs: 0 });
      try {
        const points = await collect();
        const depth = points.find(
          (p) => p.name === "runledger.queue.depth" && p.attributes["messaging.destination.name"] === "depth.job",
        );
        expect(depth?.value).toBe(5);
        const oldest = points.find(
          (p) => p.name === "runledger.queue.oldest_age" && p.attributes["messaging.destination.name"] === "depth.job",
        );
        expect(oldest?.value).toBeGreaterThanOrEqual(0);
      } finally {
        stop();
      }
    });
  });
});
