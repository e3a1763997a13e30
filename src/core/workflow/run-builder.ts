import type { WorkflowType } from "../ids.ts";
import { type Result, resultOf } from "../result.ts";
import { requireWorkflowType, WorkflowRunHeaderBuilder } from "./run-header.ts";
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
export class WorkflowRunEnqueueBuilder extends WorkflowRunHeaderBuilder {
  #steps: WorkflowStepEnqueue[] = [];

  private constructor(workflowType: string, metadata: unknown) {
    super(workflowType, metadata);
  }

  /** Never throws; a blank workflow type is reported by `build()`. */
  static new(workflowType: WorkflowType, metadata: unknown): WorkflowRunEnqueueBuilder {
    return new WorkflowRunEnqueueBuilder(workflowType, metadata);
  }

  /** Like `new`, from a raw string, throwing `workflow.invalid_dag_workflow_type_blank` at once. */
  static tryNew(workflowType: string, metadata: unknown): WorkflowRunEnqueueBuilder {
    requireWorkflowType(workflowType);
    return new WorkflowRunEnqueueBuilder(workflowType, metadata);
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
      ...this.header(),
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
