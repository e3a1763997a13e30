import { createTraceState, SpanKind, TraceFlags } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { parseTraceContext } from "../../src/runtime/index.ts";
import { startProcessSpan } from "../../src/runtime/telemetry.ts";
import { formatTraceContext } from "../../src/store/index.ts";
import type { RunnableJob } from "../../src/store/worker.ts";

// A tracer of this file's own, not registered globally: the relationship options, in isolation.
const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer("test");

const producer = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: createTraceState("vendor=abc,other=x;y"),
};

const job = (traceContext: string | null): RunnableJob => ({
  id: "01a23d36-09d2-72df-adfb-efc165adf005",
  jobId: "01a23d36-09d2-72df-adfb-efc165adf005",
  jobType: "report.render",
  organizationId: "01a23d36-0000-7000-8000-000000000001",
  payload: {},
  runNumber: 2,
  attempt: 3,
  maxAttempts: 5,
  timeoutSeconds: 60,
  checkpoint: null,
  workerId: "w1",
  workflowStepId: "01a23d36-0000-7000-8000-000000000002",
  workflowRunId: "01a23d36-0000-7000-8000-000000000003",
  workflowStepKey: "render",
  schedule: null,
  traceContext,
});

describe("trace context", () => {
  it("round-trips traceparent and tracestate through the stored text", () => {
    const stored = formatTraceContext(producer);
    expect(stored).toBe("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=abc,other=x;y");
    const parsed = parseTraceContext(stored)!;
    expect(parsed).toMatchObject({ traceId: producer.traceId, spanId: producer.spanId, traceFlags: 1, isRemote: true });
    expect(parsed.traceState?.get("vendor")).toBe("abc");
  });

  it("ignores what is not a valid traceparent", () => {
    for (const text of [
      null,
      "",
      "garbage",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    ])
      expect(parseTraceContext(text)).toBeUndefined();
  });

  it("links, parents or ignores the enqueue as the span relationship says", () => {
    const stored = formatTraceContext(producer);
    exporter.reset();
    for (const relationship of ["link", "parent", "none"] as const)
      startProcessSpan(tracer, job(stored), relationship).end();
    startProcessSpan(tracer, job(null), "link").end();
    const [link, parent, none, untraced] = exporter.getFinishedSpans();
    expect(link!.links.map((l) => l.context.spanId)).toEqual([producer.spanId]);
    expect(link!.parentSpanContext).toBeUndefined();
    expect(parent!.links).toEqual([]);
    expect(parent!.parentSpanContext?.spanId).toBe(producer.spanId);
    expect(parent!.spanContext().traceId).toBe(producer.traceId);
    expect(none!.links).toEqual([]);
    expect(none!.parentSpanContext).toBeUndefined();
    expect(untraced!.links).toEqual([]);
    expect(link!.kind).toBe(SpanKind.CONSUMER);
    expect(link!.attributes).toEqual({
      "messaging.system": "runledger",
      "messaging.operation.name": "process",
      "messaging.operation.type": "process",
      "messaging.destination.name": "report.render",
      "messaging.message.id": "01a23d36-09d2-72df-adfb-efc165adf005",
      "messaging.client.id": "w1",
      "runledger.attempt": 3,
      "runledger.run_number": 2,
      "runledger.workflow.run_id": "01a23d36-0000-7000-8000-000000000003",
      "runledger.workflow.step_key": "render",
      "runledger.organization_id": "01a23d36-0000-7000-8000-000000000001",
    });
  });
});
