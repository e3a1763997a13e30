import type { DbRow } from "../../rows.ts";
import type { workflowRuns, workflowStepDependencies, workflowSteps } from "../../schema/index.ts";

/** A `workflow_runs` row as `select *` returns it. */
export type WorkflowRunRow = DbRow<typeof workflowRuns>;

/** A `workflow_steps` row as `select *` returns it. */
export type WorkflowStepRow = DbRow<typeof workflowSteps>;

/** A `workflow_step_dependencies` row as `select *` returns it. */
export type WorkflowEdgeRow = DbRow<typeof workflowStepDependencies>;

/** An edge with the keys of both its steps, as the edge list reads it. */
export type WorkflowEdgeWithKeysRow = WorkflowEdgeRow & {
  prerequisite_step_key: string;
  dependent_step_key: string;
};
