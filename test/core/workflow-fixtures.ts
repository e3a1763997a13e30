import type {
  WorkflowDependencyReleaseMode,
  WorkflowRunEnqueue,
  WorkflowStepDependencySpec,
  WorkflowStepEnqueue,
} from "../../src/core/index.ts";

type Deps = readonly (string | readonly [string, WorkflowDependencyReleaseMode | null])[];

function specs(deps: Deps): WorkflowStepDependencySpec[] {
  return deps.map((d) =>
    typeof d === "string"
      ? { prerequisiteStepKey: d, releaseMode: null }
      : { prerequisiteStepKey: d[0], releaseMode: d[1] },
  );
}

/** A JOB step with nothing set but its key, type and dependencies. */
export function jobStep(
  stepKey: string,
  deps: Deps = [],
  overrides: Partial<WorkflowStepEnqueue> = {},
): WorkflowStepEnqueue {
  return {
    stepKey,
    executionKind: "JOB",
    jobType: `jobs.${stepKey}`,
    organizationId: null,
    payload: { step: stepKey },
    priority: null,
    maxAttempts: null,
    timeoutSeconds: null,
    stage: null,
    dependencies: specs(deps),
    ...overrides,
  };
}

/** An EXTERNAL gate step. */
export function externalStep(
  stepKey: string,
  deps: Deps = [],
  overrides: Partial<WorkflowStepEnqueue> = {},
): WorkflowStepEnqueue {
  return {
    stepKey,
    executionKind: "EXTERNAL",
    jobType: null,
    organizationId: null,
    payload: {},
    priority: null,
    maxAttempts: null,
    timeoutSeconds: null,
    stage: null,
    dependencies: specs(deps),
    ...overrides,
  };
}

/** A run around `steps`. */
export function run(steps: WorkflowStepEnqueue[], overrides: Partial<WorkflowRunEnqueue> = {}): WorkflowRunEnqueue {
  return { workflowType: "wf", organizationId: null, metadata: {}, idempotencyKey: null, steps, ...overrides };
}
