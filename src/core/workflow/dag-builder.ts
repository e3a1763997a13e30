import { RunledgerError } from "../errors.ts";
import { isBlank } from "../ids.ts";
import { type Result, resultOf } from "../result.ts";
import type { WorkflowDependencyReleaseMode } from "../statuses.ts";
import { requireWorkflowType, WorkflowRunHeaderBuilder } from "./run-header.ts";
import type { WorkflowRunEnqueue, WorkflowStepDependencySpec } from "./types.ts";
import { validateWorkflowRunEnqueue } from "./validation.ts";

/** Hooks for builders handed out by a catalog. */
export interface WorkflowDagBuilderOptions {
  /** Called by `.job()` with each job type; throw to reject it (e.g. a type the catalog does not know). */
  checkJobType?: (jobType: string) => void;
  /** Called by `.job()` after `checkJobType`; throw to reject a payload (e.g. one its schema refuses). */
  checkPayload?: (jobType: string, payload: unknown, stepKey: string) => void;
}

/** Payload types by job type, as a catalog knows them; the default accepts any type and payload. */
export type WorkflowJobPayloads = Record<string, unknown>;

interface DagStep {
  jobType: string;
  payload: unknown;
  dependencies: WorkflowStepDependencySpec[];
}

function blank(value: unknown): boolean {
  return typeof value !== "string" || isBlank(value);
}

/**
 * The ergonomic way to describe a workflow of jobs with raw string keys. Validation timing is
 * part of the contract:
 *
 * | Call | Throws at the call | Reported by `build()` / `tryBuild()` |
 * | --- | --- | --- |
 * | `new` | never | blank workflow type |
 * | `tryNew` | blank workflow type | empty step list, graph errors |
 * | `.job` | blank step key, blank job type, duplicate step key | — |
 * | `.afterSuccess` / `.afterTerminal` | blank target, blank prerequisite, unknown target | missing prerequisite, self-dependency, duplicate dependency, cycle |
 * | `.idempotencyKey` | never | blank key |
 *
 * The target of an `after*` call must already have been added with `.job`; prerequisites may be
 * added later. A call that throws leaves the builder unchanged.
 */
export class WorkflowDagBuilder<
  Jobs extends WorkflowJobPayloads = WorkflowJobPayloads,
> extends WorkflowRunHeaderBuilder {
  readonly #options: WorkflowDagBuilderOptions;
  readonly #steps = new Map<string, DagStep>();

  private constructor(workflowType: string, metadata: unknown, options: WorkflowDagBuilderOptions) {
    super(workflowType, metadata);
    this.#options = options;
  }

  /**
   * Never throws; a blank workflow type is reported by `build()`. `Jobs` types `.job()`'s job
   * types and payloads (a catalog's `workflow()` fills it in); by default any is accepted.
   */
  static new<Jobs extends WorkflowJobPayloads = WorkflowJobPayloads>(
    workflowType: string,
    metadata: unknown,
    options: WorkflowDagBuilderOptions = {},
  ): WorkflowDagBuilder<Jobs> {
    return new WorkflowDagBuilder<Jobs>(workflowType, metadata, options);
  }

  /** Like `new`, but throws `workflow.invalid_dag_workflow_type_blank` at once. */
  static tryNew<Jobs extends WorkflowJobPayloads = WorkflowJobPayloads>(
    workflowType: string,
    metadata: unknown,
    options: WorkflowDagBuilderOptions = {},
  ): WorkflowDagBuilder<Jobs> {
    requireWorkflowType(workflowType);
    return new WorkflowDagBuilder<Jobs>(workflowType, metadata, options);
  }

  /**
   * Adds a JOB step (stage `queued`, queue settings from the job definition). Throws
   * `workflow.invalid_dag_step_key_blank`, `workflow.invalid_dag_job_type_blank` or
   * `workflow.invalid_dag_duplicate_step_key` at once, then whatever `checkJobType` and
   * `checkPayload` throw.
   */
  job<T extends keyof Jobs & string>(stepKey: string, jobType: T, payload: Jobs[T]): this {
    if (blank(stepKey)) throw new RunledgerError("workflow.invalid_dag_step_key_blank");
    if (blank(jobType)) throw new RunledgerError("workflow.invalid_dag_job_type_blank", { details: { stepKey } });
    if (this.#steps.has(stepKey)) {
      throw new RunledgerError("workflow.invalid_dag_duplicate_step_key", { details: { stepKey } });
    }
    this.#options.checkJobType?.(jobType);
    this.#options.checkPayload?.(jobType, payload, stepKey);
    this.#steps.set(stepKey, { jobType, payload, dependencies: [] });
    return this;
  }

  /** `stepKey` runs only if every prerequisite succeeds (`ON_SUCCESS` edges). */
  afterSuccess(stepKey: string, prerequisiteStepKeys: readonly string[]): this {
    return this.#after(stepKey, prerequisiteStepKeys, "ON_SUCCESS");
  }

  /** `stepKey` runs once every prerequisite has finished in any way (`ON_TERMINAL` edges). */
  afterTerminal(stepKey: string, prerequisiteStepKeys: readonly string[]): this {
    return this.#after(stepKey, prerequisiteStepKeys, "ON_TERMINAL");
  }

  #after(stepKey: string, prerequisiteStepKeys: readonly string[], releaseMode: WorkflowDependencyReleaseMode): this {
    if (blank(stepKey)) throw new RunledgerError("workflow.invalid_dag_step_key_blank");
    for (const prerequisiteStepKey of prerequisiteStepKeys) {
      if (blank(prerequisiteStepKey)) {
        throw new RunledgerError("workflow.invalid_dag_dependency_step_key_blank", {
          details: { stepKey, prerequisiteStepKey },
        });
      }
    }
    const step = this.#steps.get(stepKey);
    if (step === undefined) {
      throw new RunledgerError("workflow.invalid_dag_unknown_target_step", { details: { stepKey } });
    }
    for (const prerequisiteStepKey of prerequisiteStepKeys) {
      step.dependencies.push({ prerequisiteStepKey, releaseMode });
    }
    return this;
  }

  /** The validated request (steps in the order added); throws a `workflow.invalid_dag_*` error. */
  build(): WorkflowRunEnqueue {
    const run: WorkflowRunEnqueue = {
      ...this.header(),
      steps: Array.from(this.#steps, ([stepKey, step]) => ({
        stepKey,
        executionKind: "JOB" as const,
        jobType: step.jobType,
        organizationId: null,
        payload: step.payload,
        priority: null,
        maxAttempts: null,
        timeoutSeconds: null,
        stage: "queued" as const,
        dependencies: step.dependencies.map((dependency) => ({ ...dependency })),
      })),
    };
    validateWorkflowRunEnqueue(run);
    return run;
  }

  /** `build()` with the failure returned instead of thrown. */
  tryBuild(): Result<WorkflowRunEnqueue> {
    return resultOf(() => this.build());
  }
}
