import {
  type Attributes,
  type BatchObservableResult,
  context,
  createTraceState,
  type Link,
  type Meter,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { ALL_ORGANIZATIONS, deadLetterReason, type JobFailure, type OrganizationScope } from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";
import {
  TELEMETRY_ATTRIBUTES as ATTR,
  activeMeter,
  activeTracer,
  clientOperationDuration,
  DURATION_BUCKETS,
  instrumentsOf,
  MESSAGING_SYSTEM,
  RUN_TERMINAL_CHANNEL,
  readFinishedWorkflowRuns,
  readQueueDepth,
} from "../store/index.ts";
import type { RunnableJob } from "../store/worker.ts";

/**
 * How a job's processing span relates to the span that enqueued it: a link (the default, as the
 * messaging conventions recommend: each attempt is its own trace), the enqueue as parent (one
 * trace from enqueue to every attempt), or no relation.
 */
export type SpanRelationship = "link" | "parent" | "none";

/** Telemetry settings of a Supervisor (see `SupervisorBuilder.withTelemetry`). */
export interface TelemetryOptions {
  /** Default `"link"`. */
  spanRelationship?: SpanRelationship;
  /**
   * Report `runledger.queue.depth` and `runledger.queue.oldest_age` gauges, read from the
   * database at most once per `sampleIntervalMs` (default 15 s) however often the SDK collects.
   * Off by default: one process per database is enough.
   */
  queueMetrics?: boolean | { sampleIntervalMs?: number; scope?: OrganizationScope };
  /**
   * Record a `workflow {workflowType}` span per workflow run, from its enqueue to its end, as a
   * child of the enqueue's span: this process listens for finished runs and reads each once by
   * primary key (no write anywhere). Off by default: enable it in one process per database.
   */
  workflowRunSpans?: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** A stored trace context (see `formatTraceContext`) as a remote span context; undefined when invalid. */
export function parseTraceContext(text: string | null | undefined): SpanContext | undefined {
  if (!text) return undefined;
  const newline = text.indexOf("\n");
  const parent = newline === -1 ? text : text.slice(0, newline);
  const match = TRACEPARENT.exec(parent);
  if (match === null || match[1] === "ff") return undefined;
  const spanContext: SpanContext = {
    traceId: match[2]!,
    spanId: match[3]!,
    traceFlags: Number.parseInt(match[4]!, 16),
    isRemote: true,
  };
  if (!trace.isSpanContextValid(spanContext)) return undefined;
  if (newline !== -1) spanContext.traceState = createTraceState(text.slice(newline + 1));
  return spanContext;
}

/** Start the CONSUMER span of one attempt (`process {jobType}`). */
export function startProcessSpan(tracer: Tracer, job: RunnableJob, relationship: SpanRelationship): Span {
  const attributes: Attributes = {
    [ATTR.system]: MESSAGING_SYSTEM,
    [ATTR.operationName]: "process",
    [ATTR.operationType]: "process",
    [ATTR.destination]: job.jobType,
    [ATTR.messageId]: job.id,
    [ATTR.clientId]: job.workerId,
    [ATTR.attempt]: job.attempt,
    [ATTR.runNumber]: job.runNumber,
  };
  if (job.workflowRunId !== null) attributes[ATTR.workflowRunId] = job.workflowRunId;
  if (job.workflowStepKey != null) attributes[ATTR.stepKey] = job.workflowStepKey;
  if (job.organizationId !== null) attributes[ATTR.organization] = job.organizationId;
  const producer = relationship === "none" ? undefined : parseTraceContext(job.traceContext);
  // A fresh root unless the enqueue is the parent: an application span that happens to be active
  // while the worker claims must not become every job's parent.
  const parent =
    producer !== undefined && relationship === "parent" ? trace.setSpanContext(ROOT_CONTEXT, producer) : ROOT_CONTEXT;
  const links: Link[] | undefined =
    producer !== undefined && relationship === "link" ? [{ context: producer }] : undefined;
  return tracer.startSpan(`process ${job.jobType}`, { kind: SpanKind.CONSUMER, attributes, links }, parent);
}

/** Run `work` with `span` active, so the handler's own spans become its children. */
export function withSpan<T>(span: Span | undefined, work: () => T): T {
  if (span === undefined) return work();
  return context.with(trace.setSpan(ROOT_CONTEXT, span), work);
}

interface ProcessInstruments {
  duration: ReturnType<Meter["createHistogram"]>;
  receiveDuration: ReturnType<Meter["createHistogram"]>;
  consumed: ReturnType<Meter["createCounter"]>;
  /** Attributes of a successful attempt, per job type: no object per job. */
  ok: Map<string, Attributes>;
}

const processInstruments = new WeakMap<Meter, ProcessInstruments>();

function makeProcessInstruments(meter: Meter): ProcessInstruments {
  return {
    duration: meter.createHistogram("messaging.process.duration", {
      unit: "s",
      description: "Duration of processing operation.",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    receiveDuration: clientOperationDuration(meter),
    consumed: meter.createCounter("messaging.client.consumed.messages", {
      unit: "{message}",
      description: "Number of messages that were delivered to the application.",
    }),
    ok: new Map(),
  };
}

function processAttributes(jobType: string, errorType?: string): Attributes {
  const attributes: Attributes = {
    [ATTR.system]: MESSAGING_SYSTEM,
    [ATTR.operationName]: "process",
    [ATTR.operationType]: "process",
    [ATTR.destination]: jobType,
  };
  if (errorType !== undefined) attributes[ATTR.errorType] = errorType;
  return attributes;
}

/** What ended an attempt, as its telemetry sees it. */
export interface AttemptEnd {
  job: RunnableJob;
  span: Span | undefined;
  /** `performance.now()` at the start. */
  startedAt: number;
  /** The failure recorded, or undefined for a success. */
  failure?: JobFailure;
  /** An abort that records nothing (cancellation, lost lease): its reason as the error type. */
  abandoned?: string;
}

/** End an attempt's span and record its duration; nothing when no SDK is registered. */
export function endAttempt(end: AttemptEnd): void {
  const { job, span, failure } = end;
  const meter = activeMeter();
  if (span === undefined && meter === undefined) return;
  const seconds = (performance.now() - end.startedAt) / 1000;
  const errorType =
    failure !== undefined
      ? typeof failure.code === "string" && failure.code !== ""
        ? failure.code
        : "job.invalid_failure"
      : end.abandoned;
  if (span !== undefined) {
    if (errorType !== undefined) {
      span.setAttribute(ATTR.errorType, errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    if (failure !== undefined && deadLetterReason(failure.kind, job.attempt, job.maxAttempts) !== null) {
      span.setAttribute(ATTR.deadLetter, true);
    }
    span.end();
  }
  if (meter === undefined) return;
  const instruments = instrumentsOf(processInstruments, meter, makeProcessInstruments);
  let attributes: Attributes | undefined;
  if (errorType === undefined) {
    attributes = instruments.ok.get(job.jobType);
    if (attributes === undefined) {
      attributes = processAttributes(job.jobType);
      if (instruments.ok.size < 10_000) instruments.ok.set(job.jobType, attributes);
    }
  } else attributes = processAttributes(job.jobType, errorType);
  instruments.duration.record(seconds, attributes);
}

/** Record one claim: its duration (`receive`) and the jobs it delivered, by job type. */
export function recordReceive(meter: Meter, startedAt: number, jobs: readonly RunnableJob[], errorType?: string): void {
  const instruments = instrumentsOf(processInstruments, meter, makeProcessInstruments);
  const attributes: Attributes = {
    [ATTR.system]: MESSAGING_SYSTEM,
    [ATTR.operationName]: "receive",
    [ATTR.operationType]: "receive",
  };
  if (errorType !== undefined) attributes[ATTR.errorType] = errorType;
  instruments.receiveDuration.record((performance.now() - startedAt) / 1000, attributes);
  if (jobs.length === 0) return;
  const counts = new Map<string, number>();
  for (const job of jobs) counts.set(job.jobType, (counts.get(job.jobType) ?? 0) + 1);
  for (const [jobType, count] of counts) {
    instruments.consumed.add(count, {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.operationName]: "receive",
      [ATTR.operationType]: "receive",
      [ATTR.destination]: jobType,
    });
  }
}

/** Stops reporting queue gauges. */
export type StopObserving = () => void;

/**
 * Report `runledger.queue.depth` (due pending jobs) and `runledger.queue.oldest_age` (seconds
 * the oldest due job has waited) per job type as observable gauges on the registered meter. The
 * database is read at most once per `sampleIntervalMs` (default 15 s), one read at a time; a
 * collection in between reports the last sample. A failed read reports nothing for that
 * collection. Call it after registering the SDK's meter provider.
 */
export function observeQueueMetrics(
  db: RunledgerDb,
  options: { sampleIntervalMs?: number; scope?: OrganizationScope } = {},
): StopObserving {
  const meter = activeMeter();
  if (meter === undefined) return () => {};
  const intervalMs = options.sampleIntervalMs ?? 15_000;
  const scope = options.scope ?? ALL_ORGANIZATIONS;
  const depth = meter.createObservableGauge("runledger.queue.depth", {
    unit: "{job}",
    description: "Pending jobs that are due, by job type (sampled from the database).",
  });
  const oldest = meter.createObservableGauge("runledger.queue.oldest_age", {
    unit: "s",
    description: "How long the oldest due pending job has waited, by job type (sampled from the database).",
  });
  let sample: { at: number; rows: Awaited<ReturnType<typeof readQueueDepth>> } | undefined;
  let reading: Promise<void> | undefined;
  const refresh = async () => {
    try {
      sample = { at: performance.now(), rows: await readQueueDepth(db, { scope }) };
    } catch {
      // Report nothing until the next sample is due: a failing database is not read more often.
      sample = { at: performance.now(), rows: [] };
    } finally {
      reading = undefined;
    }
  };
  const callback = async (result: BatchObservableResult) => {
    if (sample === undefined || performance.now() - sample.at >= intervalMs) {
      reading ??= refresh();
      await reading;
    }
    for (const row of sample?.rows ?? []) {
      const attributes = { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.destination]: row.jobType };
      result.observe(depth, row.depth, attributes);
      result.observe(oldest, row.oldestAgeSeconds, attributes);
    }
  };
  meter.addBatchObservableCallback(callback, [depth, oldest]);
  return () => meter.removeBatchObservableCallback(callback, [depth, oldest]);
}

/**
 * Record a `workflow {workflowType}` span for each workflow run that finishes from now on, from
 * the run's creation to its end, as a child of its enqueue's span when that was traced (status
 * ERROR and `error.type` = `workflow.failed` or `workflow.canceled` unless it succeeded). It
 * listens for the runs' terminal notifications and reads the finished runs by primary key, a
 * batch at a time; nothing when no tracer is registered. Resolves with a function that stops it.
 */
export async function observeWorkflowRuns(
  db: RunledgerDb,
  options: { scope?: OrganizationScope; onError?: (error: unknown) => void } = {},
): Promise<StopObserving> {
  const scope = options.scope ?? ALL_ORGANIZATIONS;
  let pending = new Set<string>();
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const tracer = activeTracer();
    const runIds = [...pending];
    pending = new Set();
    if (tracer === undefined || runIds.length === 0) return;
    try {
      for (const run of await readFinishedWorkflowRuns(db, { scope, runIds })) {
        const enqueue = parseTraceContext(run.traceContext);
        const attributes: Attributes = {
          [ATTR.system]: MESSAGING_SYSTEM,
          [ATTR.workflowRunId]: run.id,
          [ATTR.workflowType]: run.workflowType,
          "runledger.workflow.status": run.status,
        };
        if (run.organizationId !== null) attributes[ATTR.organization] = run.organizationId;
        const parent = enqueue === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, enqueue);
        const span = tracer.startSpan(
          `workflow ${run.workflowType}`,
          { kind: SpanKind.INTERNAL, startTime: run.createdAt, attributes },
          parent,
        );
        if (run.status !== "SUCCEEDED") {
          span.setAttribute(ATTR.errorType, `workflow.${run.status.toLowerCase()}`);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end(run.finishedAt);
      }
    } catch (error) {
      options.onError?.(error);
    }
  };
  const subscription = await db.$runledger.listen(RUN_TERMINAL_CHANNEL, (payload) => {
    for (const id of payload.split(",")) if (id !== "" && pending.size < 10_000) pending.add(id);
    if (!scheduled && pending.size > 0) {
      scheduled = true;
      // Runs finishing together are read together.
      setTimeout(() => void flush(), 100).unref();
    }
  });
  return () => void subscription.unlisten().catch(() => {});
}
