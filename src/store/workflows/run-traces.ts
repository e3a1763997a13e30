import { sql } from "drizzle-orm";
import type { OrganizationScope, WorkflowRunStatus } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import { toDate } from "../rows.ts";
import { workflowRuns } from "../schema/index.ts";
import { scopeCondition } from "../scope.ts";
import { isUuid } from "../validate.ts";

/** A finished workflow run as its telemetry span needs it. */
export interface FinishedWorkflowRun {
  id: string;
  workflowType: string;
  organizationId: string | null;
  status: WorkflowRunStatus;
  createdAt: Date;
  finishedAt: Date;
  /** The enqueue's stored W3C trace context, or null when it was not traced. */
  traceContext: string | null;
}

/**
 * The runs among `runIds` (at most 1,000; other ids are ignored) that have finished, in `scope`:
 * by primary key, for the span that covers a run from enqueue to its end.
 */
export async function readFinishedWorkflowRuns(
  executor: Executor,
  input: { scope: OrganizationScope; runIds: readonly string[] },
): Promise<FinishedWorkflowRun[]> {
  const visible = scopeCondition(sql`organization_id`, input?.scope);
  const ids = (input.runIds ?? []).filter(isUuid).slice(0, 1000);
  if (ids.length === 0) return [];
  try {
    const rows = await queryRows<{
      id: string;
      workflow_type: string;
      organization_id: string | null;
      status: WorkflowRunStatus;
      created_at: string | Date;
      finished_at: string | Date;
      trace_context: string | null;
    }>(
      executor,
      sql`select id, workflow_type, organization_id, status, created_at, finished_at, trace_context
        from ${workflowRuns}
        where id = any(${`{${ids.join(",")}}`}::uuid[]) and finished_at is not null and ${visible}`,
    );
    return rows.map((row) => ({
      id: row.id,
      workflowType: row.workflow_type,
      organizationId: row.organization_id,
      status: row.status,
      createdAt: toDate(row.created_at),
      finishedAt: toDate(row.finished_at),
      traceContext: row.trace_context,
    }));
  } catch (error) {
    throw toQueryError(error);
  }
}
