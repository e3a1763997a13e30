import type { JobStage, WorkflowDependencyReleaseMode, WorkflowStepExecutionKind } from "../statuses.ts";

/** One incoming edge of a step: which step must finish first, and how. */
export interface WorkflowStepDependencySpec {
  prerequisiteStepKey: string;
  /** `ON_SUCCESS` needs the prerequisite to succeed; `ON_TERMINAL` (also `null`) any finish. */
  releaseMode: WorkflowDependencyReleaseMode | null;
}

/**
 * One step of a workflow enqueue request. JOB steps run a job of `jobType`; EXTERNAL steps are
 * gates completed by the application and carry no job type, queue settings or stage. `null`
 * queue settings mean "the job definition's default, frozen at enqueue".
 */
export interface WorkflowStepEnqueue {
  stepKey: string;
  executionKind: WorkflowStepExecutionKind;
  jobType: string | null;
  /** Overrides the run's organization for this step's job. */
  organizationId: string | null;
  payload: unknown;
  priority: number | null;
  maxAttempts: number | null;
  timeoutSeconds: number | null;
  stage: JobStage | null;
  /** Flow control: the step's job gets this concurrency key (JOB steps only). */
  concurrencyKey?: string | null;
  dependencies: WorkflowStepDependencySpec[];
}

/** A whole workflow run to enqueue: the DAG plus its scope and optional idempotency key. */
export interface WorkflowRunEnqueue {
  workflowType: string;
  organizationId: string | null;
  metadata: unknown;
  idempotencyKey: string | null;
  steps: WorkflowStepEnqueue[];
}
