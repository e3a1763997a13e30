import type { JobStage, WorkflowDependencyReleaseMode, WorkflowStepExecutionKind } from "../statuses.ts";
import type { WorkflowRunEnqueue, WorkflowStepEnqueue } from "./types.ts";

/** A dependency as stored in idempotency snapshots; a `null` mode is written as `ON_TERMINAL`. */
export interface CanonicalWorkflowDependency {
  prerequisite_step_key: string;
  release_mode: WorkflowDependencyReleaseMode;
}

/** A step as stored in idempotency snapshots (snake_case, effective organization and stage). */
export interface CanonicalWorkflowStep {
  step_key: string;
  execution_kind: WorkflowStepExecutionKind;
  job_type: string | null;
  organization_id: string | null;
  payload: unknown;
  priority: number | null;
  max_attempts: number | null;
  timeout_seconds: number | null;
  stage: JobStage | null;
  concurrency_key?: string;
  dependencies: CanonicalWorkflowDependency[];
}

/** The `enqueue_request` snapshot of a keyed workflow run. */
export interface CanonicalWorkflowRunRequest {
  metadata: unknown;
  steps: CanonicalWorkflowStep[];
}

/** The `request` recorded for an append mutation. */
export interface CanonicalAppendRequest {
  append_window_step_key: string;
  steps: CanonicalWorkflowStep[];
}

/**
 * Orders strings by Unicode code point (the same order as their UTF-8 bytes), so snapshots sort
 * the way a byte-wise implementation would, independent of locale.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * One step in snapshot form: organization is the step's override else `runOrganizationId`;
 * stage is the requested one or `queued` for JOB steps and `null` for EXTERNAL steps;
 * dependencies are sorted by prerequisite key, then release mode.
 */
export function canonicalWorkflowStep(
  step: WorkflowStepEnqueue,
  runOrganizationId: string | null,
): CanonicalWorkflowStep {
  const dependencies = step.dependencies
    .map(
      (dependency): CanonicalWorkflowDependency => ({
        prerequisite_step_key: dependency.prerequisiteStepKey,
        release_mode: dependency.releaseMode ?? "ON_TERMINAL",
      }),
    )
    .sort(
      (a, b) =>
        compareCodePoints(a.prerequisite_step_key, b.prerequisite_step_key) ||
        compareCodePoints(a.release_mode, b.release_mode),
    );
  return {
    step_key: step.stepKey,
    execution_kind: step.executionKind,
    job_type: step.jobType ?? null,
    organization_id: step.organizationId ?? runOrganizationId ?? null,
    payload: step.payload ?? null,
    priority: step.priority ?? null,
    max_attempts: step.maxAttempts ?? null,
    timeout_seconds: step.timeoutSeconds ?? null,
    stage: step.executionKind === "JOB" ? (step.stage ?? "queued") : null,
    // Only when set: snapshots stored before concurrency keys existed still compare equal.
    ...(step.concurrencyKey != null ? { concurrency_key: step.concurrencyKey } : {}),
    dependencies,
  };
}

function canonicalSteps(steps: readonly WorkflowStepEnqueue[], runOrganizationId: string | null) {
  return steps
    .map((step) => canonicalWorkflowStep(step, runOrganizationId))
    .sort((a, b) => compareCodePoints(a.step_key, b.step_key));
}

/**
 * The idempotency snapshot of a run: `{ metadata, steps }` with steps sorted by key. Workflow
 * type and organization are the idempotency scope, not part of the snapshot. Equal requests
 * give deep-equal snapshots whatever the order of their steps and dependencies.
 */
export function canonicalWorkflowRunRequest(run: WorkflowRunEnqueue): CanonicalWorkflowRunRequest {
  return { metadata: run.metadata ?? null, steps: canonicalSteps(run.steps, run.organizationId) };
}

/** The canonical form of an append request, compared when a mutation key is reused. */
export function canonicalAppendRequest(
  appendWindowStepKey: string,
  steps: readonly WorkflowStepEnqueue[],
  runOrganizationId: string | null,
): CanonicalAppendRequest {
  return { append_window_step_key: appendWindowStepKey, steps: canonicalSteps(steps, runOrganizationId) };
}
