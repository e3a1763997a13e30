import { RunledgerError } from "../errors.ts";
import { isBlank, type JobType, type StepKey } from "../ids.ts";
import { type Result, resultOf } from "../result.ts";
import type { JobStage } from "../statuses.ts";
import type { WorkflowStepDependencySpec, WorkflowStepEnqueue } from "./types.ts";
import { validateWorkflowStep } from "./validation.ts";

function copyStep(step: WorkflowStepEnqueue): WorkflowStepEnqueue {
  return { ...step, dependencies: step.dependencies.map((dependency) => ({ ...dependency })) };
}

/**
 * Builds one `WorkflowStepEnqueue` with per-step settings the DAG builder does not offer:
 * priority, attempts, timeout, stage, external gates and explicit dependency specs. Setters
 * never throw; `build()` validates the step on its own and the run builder validates the graph.
 */
export class WorkflowStepEnqueueBuilder {
  readonly #step: WorkflowStepEnqueue;

  private constructor(step: WorkflowStepEnqueue) {
    this.#step = step;
  }

  /** A JOB step with stage `queued`; blank identifiers are reported by `build()`. */
  static job(stepKey: StepKey, jobType: JobType, payload: unknown): WorkflowStepEnqueueBuilder {
    return new WorkflowStepEnqueueBuilder({
      stepKey,
      executionKind: "JOB",
      jobType,
      organizationId: null,
      payload,
      priority: null,
      maxAttempts: null,
      timeoutSeconds: null,
      stage: "queued",
      dependencies: [],
    });
  }

  /** An EXTERNAL gate step (no job, no queue settings, no stage); a blank key is reported by `build()`. */
  static external(stepKey: StepKey, payload: unknown): WorkflowStepEnqueueBuilder {
    return new WorkflowStepEnqueueBuilder({
      stepKey,
      executionKind: "EXTERNAL",
      jobType: null,
      organizationId: null,
      payload,
      priority: null,
      maxAttempts: null,
      timeoutSeconds: null,
      stage: null,
      dependencies: [],
    });
  }

  /**
   * Like `job`, from raw strings, throwing at once: `workflow.invalid_dag_step_key_blank` or
   * `workflow.invalid_dag_job_type_blank` (with `details.stepKey`).
   */
  static tryJob(stepKey: string, jobType: string, payload: unknown): WorkflowStepEnqueueBuilder {
    assertStepKey(stepKey);
    if (typeof jobType !== "string" || isBlank(jobType)) {
      throw new RunledgerError("workflow.invalid_dag_job_type_blank", { details: { stepKey } });
    }
    return WorkflowStepEnqueueBuilder.job(stepKey as StepKey, jobType as JobType, payload);
  }

  /** Like `external`, from a raw string, throwing `workflow.invalid_dag_step_key_blank` at once. */
  static tryExternal(stepKey: string, payload: unknown): WorkflowStepEnqueueBuilder {
    assertStepKey(stepKey);
    return WorkflowStepEnqueueBuilder.external(stepKey as StepKey, payload);
  }

  /**
   * The step's organization. A step runs in its run's organization: the store refuses any other
   * (`workflow.step_organization_mismatch`), so this only restates the run's.
   */
  organizationId(organizationId: string): this {
    this.#step.organizationId = organizationId;
    return this;
  }

  clearOrganizationId(): this {
    this.#step.organizationId = null;
    return this;
  }

  /** Higher runs sooner; any 32-bit integer. Defaults to the job definition's priority. */
  priority(priority: number): this {
    this.#step.priority = priority;
    return this;
  }

  clearPriority(): this {
    this.#step.priority = null;
    return this;
  }

  /** Positive; defaults to the job definition's max attempts. */
  maxAttempts(maxAttempts: number): this {
    this.#step.maxAttempts = maxAttempts;
    return this;
  }

  clearMaxAttempts(): this {
    this.#step.maxAttempts = null;
    return this;
  }

  /** Positive seconds; defaults to the job definition's timeout. */
  timeoutSeconds(timeoutSeconds: number): this {
    this.#step.timeoutSeconds = timeoutSeconds;
    return this;
  }

  clearTimeoutSeconds(): this {
    this.#step.timeoutSeconds = null;
    return this;
  }

  /** The stage the step's job is enqueued with (default `queued`). */
  stage(stage: JobStage): this {
    this.#step.stage = stage;
    return this;
  }

  clearStage(): this {
    this.#step.stage = null;
    return this;
  }

  /** Appends `ON_SUCCESS` edges: this step runs only if every listed step succeeds. */
  dependsOnSuccess(prerequisiteStepKeys: readonly string[]): this {
    for (const key of prerequisiteStepKeys)
      this.#step.dependencies.push({ prerequisiteStepKey: key, releaseMode: "ON_SUCCESS" });
    return this;
  }

  /** Appends `ON_TERMINAL` edges: this step runs once every listed step has finished, however. */
  dependsOnTerminal(prerequisiteStepKeys: readonly string[]): this {
    for (const key of prerequisiteStepKeys)
      this.#step.dependencies.push({ prerequisiteStepKey: key, releaseMode: "ON_TERMINAL" });
    return this;
  }

  /** Appends one hand-written edge (`releaseMode: null` means `ON_TERMINAL`). */
  dependency(spec: WorkflowStepDependencySpec): this {
    this.#step.dependencies.push({ prerequisiteStepKey: spec.prerequisiteStepKey, releaseMode: spec.releaseMode });
    return this;
  }

  /** Replaces all edges. */
  setDependencies(specs: readonly WorkflowStepDependencySpec[]): this {
    this.#step.dependencies = specs.map((spec) => ({
      prerequisiteStepKey: spec.prerequisiteStepKey,
      releaseMode: spec.releaseMode,
    }));
    return this;
  }

  /** A copy of the step as configured so far, not validated. */
  draft(): WorkflowStepEnqueue {
    return copyStep(this.#step);
  }

  /** The validated step (see `validateWorkflowStep`); throws a `workflow.invalid_dag_*` error. */
  build(): WorkflowStepEnqueue {
    const step = this.draft();
    validateWorkflowStep(step);
    return step;
  }

  /** `build()` with the failure returned instead of thrown. */
  tryBuild(): Result<WorkflowStepEnqueue> {
    return resultOf(() => this.build());
  }
}

function assertStepKey(stepKey: string): void {
  if (typeof stepKey !== "string" || isBlank(stepKey)) {
    throw new RunledgerError("workflow.invalid_dag_step_key_blank");
  }
}
