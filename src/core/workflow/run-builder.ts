import { RunledgerError } from "../errors.ts";
import { isBlank, type WorkflowType } from "../ids.ts";
import { type Result, resultOf } from "../result.ts";
import { WorkflowStepEnqueueBuilder } from "./step-builder.ts";
import type { WorkflowRunEnqueue, WorkflowStepEnqueue } from "./types.ts";
import { validateWorkflowRunEnqueue } from "./validation.ts";

/** A step for `WorkflowRunEnqueueBuilder`: a step builder or a ready `WorkflowStepEnqueue`. */
export type WorkflowStepInput = WorkflowStepEnqueueBuilder | WorkflowStepEnqueue;

function snapshot(step: WorkflowStepInput): WorkflowStepEnqueue {
  if (step instanceof WorkflowStepEnqueueBuilder) return step.draft();
  return { ...step, dependencies: step.dependencies.map((dependency) => ({ ...dependency })) };
}

/**
 * Builds a `WorkflowRunEnqueue` from explicit steps. Steps are copied when added, so later
 * changes to a step builder do not leak in. Nothing is validated until `build()`, which runs
 * the full run validation (`validateWorkflowRunEnqueue`).
 */
export class WorkflowRunEnqueueBuilder {
  readonly #workflowType: string;
  readonly #metadata: unknown;
  #organizationId: string | null = null;
  #idempotencyKey: string | null = null;
  #steps: WorkflowStepEnqueue[] = [];

  private constructor(workflowType: string, metadata: unknown) {
    this.#workflowType = workflowType;
    this.#metadata = metadata;
  }

  /** Never throws; a blank workflow type is reported by `build()`. */
  static new(workflowType: WorkflowType, metadata: unknown): WorkflowRunEnqueueBuilder {
    return new WorkflowRunEnqueueBuilder(workflowType, metadata);
  }

  /** Like `new`, from a raw string, throwing `workflow.invalid_dag_workflow_type_blank` at once. */
  static tryNew(workflowType: string, metadata: unknown): WorkflowRunEnqueueBuilder {
    if (typeof workflowType !== "string" || isBlank(workflowType)) {
      throw new RunledgerError("workflow.invalid_dag_workflow_type_blank");
    }
    return new WorkflowRunEnqueueBuilder(workflowType, metadata);
  }

  /** The run's organization; steps without their own override inherit it. */
  organizationId(organizationId: string): this {
    this.#organizationId = organizationId;
    return this;
  }

  clearOrganizationId(): this {
    this.#organizationId = null;
    return this;
  }

  /** Makes enqueue idempotent within (workflow type, organization); blank keys fail at `build()`. */
  idempotencyKey(idempotencyKey: string): this {
    this.#idempotencyKey = idempotencyKey;
    return this;
  }

  clearIdempotencyKey(): this {
    this.#idempotencyKey = null;
    return this;
  }

  /** Appends one step. */
  step(step: WorkflowStepInput): this {
    this.#steps.push(snapshot(step));
    return this;
  }

  /** Appends steps in order. */
  extendSteps(steps: Iterable<WorkflowStepInput>): this {
    for (const step of steps) this.#steps.push(snapshot(step));
    return this;
  }

  /** Replaces all steps. */
  setSteps(steps: Iterable<WorkflowStepInput>): this {
    this.#steps = Array.from(steps, snapshot);
    return this;
  }

  /** The validated request; throws a `workflow.invalid_dag_*` error. */
  build(): WorkflowRunEnqueue {
    const run: WorkflowRunEnqueue = {
      workflowType: this.#workflowType,
      organizationId: this.#organizationId,
      metadata: this.#metadata,
      idempotencyKey: this.#idempotencyKey,
      steps: this.#steps.map(snapshot),
    };
    validateWorkflowRunEnqueue(run);
    return run;
  }

  /** `build()` with the failure returned instead of thrown. */
  tryBuild(): Result<WorkflowRunEnqueue> {
    return resultOf(() => this.build());
  }
}
