import {
  type Attributes,
  createNoopMeter,
  type Meter,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";

/*
 * OpenTelemetry through `@opentelemetry/api` only: the application registers an SDK, or nothing
 * happens. Every entry point first asks whether a tracer or meter is registered and, when none
 * is, does nothing else (no span object, no context serialization, no attribute object), so the
 * enqueue and the worker pay a global lookup per call. The messaging semantic conventions are
 * still "development" and live in the incubating entry of @opentelemetry/semantic-conventions,
 * which instrumentations are told to copy rather than import: the names are copied here.
 */

/** The instrumentation scope of runledger's tracer and meter. */
export const INSTRUMENTATION_NAME = "runledger";
/** `messaging.system`: job queues have no registered value, so ours is custom (as Oban's is). */
export const MESSAGING_SYSTEM = "runledger";

export const ATTR = {
  system: "messaging.system",
  operationName: "messaging.operation.name",
  operationType: "messaging.operation.type",
  destination: "messaging.destination.name",
  messageId: "messaging.message.id",
  batchCount: "messaging.batch.message_count",
  clientId: "messaging.client.id",
  errorType: "error.type",
  attempt: "runledger.attempt",
  runNumber: "runledger.run_number",
  workflowRunId: "runledger.workflow.run_id",
  workflowType: "runledger.workflow.type",
  stepKey: "runledger.workflow.step_key",
  organization: "runledger.organization_id",
  deadLetter: "runledger.dead_letter",
} as const;

/** Histogram buckets for durations in seconds (the messaging semconv's advice). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * The registered SDK's tracer, or undefined when none is registered. `trace.getTracer` would
 * hand out a proxy whose spans are non-recording; asking the global proxy for its delegate lets
 * callers skip building spans at all.
 */
export function activeTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  // Another copy of the API registered its own proxy: ask it for a tracer like anyone would.
  if (!(provider instanceof ProxyTracerProvider)) return provider.getTracer(INSTRUMENTATION_NAME);
  return provider.getDelegateTracer(INSTRUMENTATION_NAME);
}

let meterCache: { provider: MeterProvider; meter: Meter | undefined } | undefined;

/**
 * The registered SDK's meter, or undefined when none is registered (the API's no-op meter). The
 * metrics API has no proxy, so the provider is looked up on every call and compared with the last.
 */
export function activeMeter(): Meter | undefined {
  const provider = metrics.getMeterProvider();
  if (meterCache?.provider !== provider) {
    const meter = provider.getMeter(INSTRUMENTATION_NAME);
    meterCache = { provider, meter: meter === createNoopMeter() ? undefined : meter };
  }
  return meterCache.meter;
}

/** Instruments made once per meter (a new SDK gets new ones). */
export function instrumentsOf<T>(cache: WeakMap<Meter, T>, meter: Meter, make: (meter: Meter) => T): T {
  let instruments = cache.get(meter);
  if (instruments === undefined) {
    instruments = make(meter);
    cache.set(meter, instruments);
  }
  return instruments;
}

/**
 * `messaging.client.operation.duration`: one instrument for sends (the enqueue) and receives (the
 * worker's claims), as the semantic conventions define it.
 */
export function clientOperationDuration(meter: Meter): ReturnType<Meter["createHistogram"]> {
  return meter.createHistogram("messaging.client.operation.duration", {
    unit: "s",
    description: "Duration of messaging operation initiated by a producer or consumer client.",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
}

/**
 * A span context as stored with a job: the W3C `traceparent`, then a newline and the
 * `tracestate` when there is one (a newline cannot occur in either header).
 */
export function formatTraceContext(context: SpanContext): string {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  const parent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const state = context.traceState?.serialize();
  return state ? `${parent}\n${state}` : parent;
}

interface SendInstruments {
  duration: ReturnType<Meter["createHistogram"]>;
  sent: ReturnType<Meter["createCounter"]>;
}

const sendInstruments = new WeakMap<Meter, SendInstruments>();

function makeSendInstruments(meter: Meter): SendInstruments {
  return {
    duration: clientOperationDuration(meter),
    sent: meter.createCounter("messaging.client.sent.messages", {
      unit: "{message}",
      description: "Number of messages producer attempted to send to the broker.",
    }),
  };
}

/** What an enqueue tells its telemetry. */
export interface SendTarget {
  /** The job type, or undefined for a batch of several types. */
  destination: string | undefined;
  count: number;
  /** Extra span attributes (a workflow run's id and type). */
  attributes?: Attributes;
  /** Span name when not `send {destination}`. */
  name?: string;
}

/** An enqueue being traced and measured; `traceContext` is what to store with its jobs. */
export class SendOperation {
  readonly span: Span | undefined;
  readonly traceContext: string | null;
  readonly #meter: Meter | undefined;
  readonly #target: SendTarget;
  readonly #startedAt = performance.now();

  constructor(tracer: Tracer | undefined, meter: Meter | undefined, target: SendTarget) {
    this.#meter = meter;
    this.#target = target;
    if (tracer === undefined) {
      this.span = undefined;
      this.traceContext = null;
      return;
    }
    const attributes: Attributes = {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.operationName]: "send",
      [ATTR.operationType]: "send",
      ...target.attributes,
    };
    if (target.destination !== undefined) attributes[ATTR.destination] = target.destination;
    if (target.count !== 1) attributes[ATTR.batchCount] = target.count;
    this.span = tracer.startSpan(target.name ?? (target.destination ? `send ${target.destination}` : "send"), {
      kind: SpanKind.PRODUCER,
      attributes,
    });
    const context = this.span.spanContext();
    // A sampled-out span still has a valid context worth propagating; an invalid one has none.
    this.traceContext = trace.isSpanContextValid(context) ? formatTraceContext(context) : null;
  }

  /** The enqueue succeeded; `messageId` is the job id of a single-job enqueue. */
  end(messageId?: string): void {
    if (this.span !== undefined) {
      if (messageId !== undefined) this.span.setAttribute(ATTR.messageId, messageId);
      this.span.end();
    }
    this.#measure(undefined);
  }

  /** The enqueue failed with `code` (a runledger error code). */
  fail(code: string): void {
    if (this.span !== undefined) {
      this.span.setAttribute(ATTR.errorType, code);
      this.span.setStatus({ code: SpanStatusCode.ERROR });
      this.span.end();
    }
    this.#measure(code);
  }

  #measure(errorType: string | undefined): void {
    if (this.#meter === undefined) return;
    const instruments = instrumentsOf(sendInstruments, this.#meter, makeSendInstruments);
    const attributes: Attributes = {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.operationName]: "send",
      [ATTR.operationType]: "send",
    };
    if (this.#target.destination !== undefined) attributes[ATTR.destination] = this.#target.destination;
    if (errorType !== undefined) attributes[ATTR.errorType] = errorType;
    instruments.duration.record((performance.now() - this.#startedAt) / 1000, attributes);
    if (errorType === undefined) instruments.sent.add(this.#target.count, attributes);
  }
}

/**
 * Start tracing and measuring an enqueue, or return undefined when no tracer or meter is
 * registered (the common case costs two global lookups).
 */
export function beginSend(target: SendTarget): SendOperation | undefined {
  const tracer = activeTracer();
  const meter = activeMeter();
  if (tracer === undefined && meter === undefined) return undefined;
  return new SendOperation(tracer, meter, target);
}
