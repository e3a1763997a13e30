import type { WorkflowStepDependencyRecord, WorkflowStepRecord } from "../store/index.ts";

const MARK: Record<string, string> = {
  SUCCEEDED: "✓",
  FAILED: "✗",
  CANCELED: "⊘",
  RUNNING: "▶",
  PENDING: "·",
  BLOCKED: "·",
  WAITING_FOR_EXTERNAL: "⏸",
};

/**
 * A run's DAG as an indented tree in plain text: each root, then each step's dependents under
 * it (`├─▶`), with its status. A step with several prerequisites is drawn in full under the first
 * and as `↑ key` under the others, so the text stays linear in the number of edges.
 */
export function asciiDag(
  steps: readonly WorkflowStepRecord[],
  edges: readonly WorkflowStepDependencyRecord[],
): string[] {
  const byKey = new Map(steps.map((s) => [s.stepKey, s]));
  const dependents = new Map<string, WorkflowStepDependencyRecord[]>();
  const hasPrerequisite = new Set<string>();
  for (const edge of edges) {
    const list = dependents.get(edge.prerequisiteStepKey) ?? [];
    list.push(edge);
    dependents.set(edge.prerequisiteStepKey, list);
    hasPrerequisite.add(edge.dependentStepKey);
  }
  const drawn = new Set<string>();
  const lines: string[] = [];
  const label = (key: string, mode?: string) => {
    const step = byKey.get(key);
    const status = step?.status ?? "?";
    const kind = step?.executionKind === "EXTERNAL" ? " (gate)" : "";
    const edge = mode === "ON_TERMINAL" ? " [after any end]" : "";
    return `${MARK[status] ?? "?"} ${key}${kind} ${status}${edge}`;
  };
  const visit = (key: string, prefix: string, connector: string, mode?: string) => {
    if (drawn.has(key)) {
      lines.push(`${prefix}${connector}↑ ${key}${mode === "ON_TERMINAL" ? " [after any end]" : ""}`);
      return;
    }
    drawn.add(key);
    lines.push(`${prefix}${connector}${label(key, mode)}`);
    const children = dependents.get(key) ?? [];
    const childPrefix = prefix + (connector === "" ? "" : connector.startsWith("└") ? "    " : "│   ");
    children.forEach((edge, i) => {
      visit(edge.dependentStepKey, childPrefix, i === children.length - 1 ? "└─▶ " : "├─▶ ", edge.releaseMode);
    });
  };
  for (const step of steps) if (!hasPrerequisite.has(step.stepKey)) visit(step.stepKey, "", "");
  // A cycle cannot be enqueued, but draw anything left rather than hide it.
  for (const step of steps) if (!drawn.has(step.stepKey)) visit(step.stepKey, "", "");
  return lines;
}
