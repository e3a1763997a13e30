export * from "./catalog.ts";
export { JobsConfig } from "./config.ts";
export * from "./events.ts";
export * from "./health.ts";
export * from "./logger.ts";
export type { RuntimeLoopExit } from "./loop.ts";
export { DEFAULT_LOOP_BACKOFF, type LoopBackoff, type LoopStatus } from "./loop-monitor.ts";
export * from "./reaper.ts";
export * from "./registry.ts";
export { runHook } from "./results.ts";
export * from "./retention.ts";
export * from "./scheduler.ts";
export * from "./signals.ts";
export * from "./supervisor.ts";
export {
  observeQueueMetrics,
  observeWorkflowRuns,
  parseTraceContext,
  type SpanRelationship,
  type StopObserving,
  type TelemetryOptions,
} from "./telemetry.ts";
export * from "./worker.ts";
