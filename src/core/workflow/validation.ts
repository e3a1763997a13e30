import { type ErrorCode, RunledgerError } from "../errors.ts";
import { isBlank } from "../ids.ts";
import { exceedsUtf8, MAX_IDENTIFIER_BYTES, MAX_TIMEOUT_SECONDS, MAX_WORKFLOW_STEPS } from "../limits.ts";
import { isJobStage, WORKFLOW_DEPENDENCY_RELEASE_MODES } from "../statuses.ts";
import { findCycle } from "./cycle.ts";
import type { WorkflowRunEnqueue, WorkflowStepEnqueue } from "./types.ts";

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

function dagError(code: ErrorCode, details: Record<string, unknown>): RunledgerError {
  return new RunledgerError(code, { details });
}

function blank(value: unknown): boolean {
  return typeof value !== "string" || isBlank(value);
}

/** `identifier.too_long` for a string over `MAX_IDENTIFIER_BYTES`. */
function checkLength(value: unknown, field: string, at: Record<string, unknown>): void {
  if (typeof value === "string" && exceedsUtf8(value, MAX_IDENTIFIER_BYTES)) {
    throw dagError("identifier.too_long", { ...at, field, maxBytes: MAX_IDENTIFIER_BYTES });
  }
}

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

function checkPositiveInt32(
  value: number | null | undefined,
  nonPositive: ErrorCode,
  outOfRange: ErrorCode,
  at: Record<string, unknown>,
  max = 2_147_483_647,
): void {
  if (value == null) return;
  if (value <= 0) throw dagError(nonPositive, at);
  if (!isInt32(value) || value > max) throw dagError(outOfRange, at);
}

/** Blank key, then the JOB or EXTERNAL shape rules of one step. */
function checkStepShape(step: WorkflowStepEnqueue, stepIndex: number | undefined): void {
  const where = stepIndex === undefined ? {} : { stepIndex };
  if (blank(step.stepKey)) throw dagError("workflow.invalid_dag_step_key_blank", where);
  checkLength(step.stepKey, "stepKey", where);
  const at = { stepKey: step.stepKey, ...where };
  if (step.executionKind === "JOB") {
    if (blank(step.jobType)) throw dagError("workflow.invalid_dag_job_type_blank", at);
    checkLength(step.jobType, "jobType", at);
    checkPositiveInt32(
      step.maxAttempts,
      "workflow.invalid_dag_step_max_attempts_non_positive",
      "workflow.invalid_dag_step_max_attempts_out_of_range",
      at,
    );
    checkPositiveInt32(
      step.timeoutSeconds,
      "workflow.invalid_dag_step_timeout_seconds_non_positive",
      "workflow.invalid_dag_step_timeout_seconds_out_of_range",
      at,
      MAX_TIMEOUT_SECONDS,
    );
    if (step.priority != null && !isInt32(step.priority)) {
      throw dagError("workflow.invalid_dag_step_priority_out_of_range", at);
    }
    if (step.stage != null && !isJobStage(step.stage)) {
      throw dagError("workflow.invalid_dag_step_stage_invalid", at);
    }
  } else if (step.executionKind === "EXTERNAL") {
    if (step.jobType != null) throw dagError("workflow.invalid_dag_external_step_job_type_not_allowed", at);
    if (step.priority != null || step.maxAttempts != null || step.timeoutSeconds != null || step.stage != null) {
      throw dagError("workflow.invalid_dag_external_step_queue_settings_not_allowed", at);
    }
  } else {
    throw dagError("workflow.invalid_dag_step_execution_kind_invalid", at);
  }
}

/** Blank, release mode, self and duplicate checks of one step's edges; `known` adds the missing check. */
function checkDependencies(
  step: WorkflowStepEnqueue,
  stepIndex: number | undefined,
  known: ((key: string) => boolean) | null,
): void {
  const seen = new Set<string>();
  for (const dependency of step.dependencies) {
    const prerequisiteStepKey = dependency.prerequisiteStepKey;
    const at = { stepKey: step.stepKey, ...(stepIndex === undefined ? {} : { stepIndex }), prerequisiteStepKey };
    if (blank(prerequisiteStepKey)) throw dagError("workflow.invalid_dag_dependency_step_key_blank", at);
    if (
      dependency.releaseMode != null &&
      !(WORKFLOW_DEPENDENCY_RELEASE_MODES as readonly string[]).includes(dependency.releaseMode)
    ) {
      throw dagError("workflow.invalid_dag_dependency_release_mode_invalid", at);
    }
    if (prerequisiteStepKey === step.stepKey) throw dagError("workflow.invalid_dag_self_dependency", at);
    if (seen.has(prerequisiteStepKey)) throw dagError("workflow.invalid_dag_duplicate_dependency", at);
    seen.add(prerequisiteStepKey);
    if (known !== null && !known(prerequisiteStepKey)) throw dagError("workflow.invalid_dag_missing_dependency", at);
  }
}

function checkNoCycle(steps: readonly WorkflowStepEnqueue[]): void {
  const cycle = findCycle(steps);
  if (cycle !== null) throw dagError("workflow.invalid_dag_cycle", { cycle });
}

/**
 * Validates one step on its own (what `WorkflowStepEnqueueBuilder.build()` checks): non-blank
 * key; JOB steps need a non-blank job type, positive 32-bit `maxAttempts`/`timeoutSeconds`,
 * a 32-bit `priority` and a known stage when set; EXTERNAL steps may carry none of those;
 * dependency keys must be non-blank, not the step itself, and not repeated.
 * Throws a `RunledgerError` with a `workflow.invalid_dag_*` code.
 */
export function validateWorkflowStep(step: WorkflowStepEnqueue, stepIndex?: number): void {
  checkStepShape(step, stepIndex);
  checkDependencies(step, stepIndex, null);
}

/**
 * A non-empty batch; per step (in order) its shape and a key that neither exists already nor
 * repeats in the batch. Returns each key's index.
 */
function checkStepKeys(
  steps: readonly WorkflowStepEnqueue[],
  existingStepKeys: ReadonlySet<string>,
): Map<string, number> {
  if (steps.length === 0) throw dagError("workflow.invalid_dag_empty", {});
  if (steps.length + existingStepKeys.size > MAX_WORKFLOW_STEPS) {
    throw dagError("workflow.invalid_dag_too_many_steps", { maxSteps: MAX_WORKFLOW_STEPS });
  }
  const firstIndex = new Map<string, number>();
  for (const [stepIndex, step] of steps.entries()) {
    checkStepShape(step, stepIndex);
    if (existingStepKeys.has(step.stepKey)) {
      throw dagError("workflow.invalid_dag_duplicate_step_key", { stepKey: step.stepKey, stepIndex, existing: true });
    }
    const earlier = firstIndex.get(step.stepKey);
    if (earlier !== undefined) {
      throw dagError("workflow.invalid_dag_duplicate_step_key", {
        stepKey: step.stepKey,
        stepIndex,
        firstStepIndex: earlier,
      });
    }
    firstIndex.set(step.stepKey, stepIndex);
  }
  return firstIndex;
}

/**
 * Validates a step list as a DAG, in this order: non-empty and at most `MAX_WORKFLOW_STEPS`;
 * per step (in order) its shape and a unique key; then per step each dependency (blank, release
 * mode, self, duplicate, unknown prerequisite); finally no cycle (`details.cycle`, see
 * `findCycle`).
 */
export function validateWorkflowDag(steps: readonly WorkflowStepEnqueue[]): void {
  const firstIndex = checkStepKeys(steps, new Set());
  const known = (key: string) => firstIndex.has(key);
  for (const [stepIndex, step] of steps.entries()) checkDependencies(step, stepIndex, known);
  checkNoCycle(steps);
}

/**
 * Validates a whole enqueue request before anything touches the database: blank (or too long)
 * idempotency key, then blank (or too long) workflow type, then `validateWorkflowDag` on the steps.
 */
export function validateWorkflowRunEnqueue(run: WorkflowRunEnqueue): void {
  if (run.idempotencyKey != null && blank(run.idempotencyKey)) {
    throw dagError("workflow.invalid_dag_idempotency_key_blank", {});
  }
  checkLength(run.idempotencyKey, "idempotencyKey", {});
  if (blank(run.workflowType)) throw dagError("workflow.invalid_dag_workflow_type_blank", {});
  checkLength(run.workflowType, "workflowType", {});
  validateWorkflowDag(run.steps);
}

/**
 * Validates steps appended to a live run: a non-empty batch that keeps the run within
 * `MAX_WORKFLOW_STEPS`; per step its shape and a key that neither exists in the run nor repeats
 * in the batch; prerequisites that are existing or new steps; no cycle among the new steps
 * (existing steps cannot depend on new ones).
 */
export function validateWorkflowStepAppend(
  existingStepKeys: ReadonlySet<string>,
  steps: readonly WorkflowStepEnqueue[],
): void {
  const firstIndex = checkStepKeys(steps, existingStepKeys);
  const known = (key: string) => firstIndex.has(key) || existingStepKeys.has(key);
  for (const [stepIndex, step] of steps.entries()) checkDependencies(step, stepIndex, known);
  checkNoCycle(steps);
}
