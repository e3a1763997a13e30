import type { OrganizationScope } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import { scopeCondition } from "../sql/scope.ts";
import { type FinishedRunRow, finishedRuns, runOrganization } from "../sql/workflows/reads.ts";
import { isUuid } from "../validate.ts";
import { type FinishedWorkflowRun, finishedRunFromRow } from "./records.ts";

export type { FinishedWorkflowRun } from "./records.ts";

/**
 * The runs among `runIds` (at most 1,000; other ids are ignored) that have finished, in `scope`:
 * by primary key, for the span that covers a run from enqueue to its end.
 */
export async function readFinishedWorkflowRuns(
  executor: Executor,
  input: { scope: OrganizationScope; runIds: readonly string[] },
): Promise<FinishedWorkflowRun[]> {
  const visible = scopeCondition(runOrganization, input?.scope);
  const ids = (input.runIds ?? []).filter(isUuid).slice(0, 1000);
  if (ids.length === 0) return [];
  const rows = await translating(() => queryRows<FinishedRunRow>(executor, finishedRuns(ids, visible)));
  return rows.map(finishedRunFromRow);
}
