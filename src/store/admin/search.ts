import { type OrganizationScope, scopedOrganization } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { type JobRecord, jobFromRow } from "../jobs/record.ts";
import { queryRows } from "../query.ts";
import { type DbRow, type Page, toDate } from "../rows.ts";
import type { jobQueue, workflowRuns } from "../schema/index.ts";
import { type DeadLetterRow, deadLetters, jobsByIdOrKey, jobWorkflowStep, runById } from "../sql/admin.ts";
import { checkLimit, checkPage, fail, isStorableText, isUuid } from "../validate.ts";
import { runFromRow, type WorkflowRunRecord } from "../workflows/records.ts";

export interface SearchResult {
  /** Jobs whose id or idempotency key is the query, newest first. */
  jobs: JobRecord[];
  /** The workflow run whose id is the query, or whose idempotency key is (among `limit` runs). */
  runs: WorkflowRunRecord[];
}

/**
 * Find jobs and workflow runs by id or by idempotency key (exact match). A key is looked up
 * per job type through the idempotency indexes, so the search reads index entries, not the table.
 * Rows of an organization outside `scope` are not found.
 */
export async function searchJobsAndRuns(
  executor: Executor,
  input: { query: string; scope: OrganizationScope; limit: number },
): Promise<SearchResult> {
  scopedOrganization(input?.scope);
  checkLimit(input.limit);
  if (typeof input.query !== "string" || !isStorableText(input.query))
    fail("job.invalid_pagination", { field: "query" });
  checkPage({ text: { query: input.query } });
  const query = input.query.trim();
  if (query === "") return { jobs: [], runs: [] };
  const id = isUuid(query) ? query.toLowerCase() : undefined;
  const scope = input.scope;
  return translating(async () => {
    const jobs = await queryRows<DbRow<typeof jobQueue>>(
      executor,
      jobsByIdOrKey({ id, key: query, limit: input.limit, scope }),
    );
    const runs = await queryRows<DbRow<typeof workflowRuns>>(executor, runById(id, scope));
    const seen = new Set<string>();
    const unique = jobs.filter((row) => !seen.has(row.id) && seen.add(row.id));
    return { jobs: unique.slice(0, input.limit).map(jobFromRow), runs: runs.map(runFromRow) };
  });
}

/** A job that is dead-lettered now, with the failure that put it there. */
export interface DeadLetterRecord {
  jobId: string;
  jobType: string;
  organizationId: string | null;
  runNumber: number;
  attempt: number;
  errorCode: string | null;
  errorMessage: string | null;
  failedAt: Date;
  /** When the job was created (what a bulk filter's `createdAfter`/`createdBefore` compare). */
  jobCreatedAt: Date;
}

/** Where the previous page of `listDeadLetters` ended. */
export interface DeadLetterCursor {
  failedAt: Date;
  jobId: string;
}

/**
 * Jobs dead-lettered now (a requeued job leaves the list), most recent failure first, a page at
 * a time, optionally of one job type. Served by the dead letters' failure-time index, so it
 * stays fast however many finished jobs the queue holds.
 */
export async function listDeadLetters(
  executor: Executor,
  filter: { scope: OrganizationScope; jobType?: string; limit: number; after?: DeadLetterCursor },
): Promise<Page<DeadLetterRecord, DeadLetterCursor>> {
  scopedOrganization(filter?.scope);
  checkLimit(filter.limit);
  const after = filter.after;
  checkPage({
    after:
      after === undefined
        ? undefined
        : after === null
          ? (null as never)
          : { createdAt: after.failedAt, id: after.jobId },
    text: { jobType: filter.jobType },
  });
  return translating(async () => {
    const rows = await queryRows<DeadLetterRow>(
      executor,
      deadLetters({ scope: filter.scope, jobType: filter.jobType, limit: filter.limit, after }),
    );
    const items: DeadLetterRecord[] = rows.slice(0, filter.limit).map((row) => ({
      jobId: row.job_id,
      jobType: row.job_type,
      organizationId: row.organization_id,
      runNumber: Number(row.run_number),
      attempt: Number(row.attempt),
      errorCode: row.error_code,
      errorMessage: row.error_message,
      failedAt: toDate(row.failed_at),
      jobCreatedAt: toDate(row.job_created_at),
    }));
    const last = items.at(-1);
    return {
      items,
      next: rows.length > filter.limit && last ? { failedAt: last.failedAt, jobId: last.jobId } : null,
    };
  });
}

/** The workflow step a job backs, or null for a plain job or a job outside `scope`. */
export async function getJobWorkflowStep(
  executor: Executor,
  jobId: string,
  scope: OrganizationScope,
): Promise<{ workflowRunId: string; stepKey: string } | null> {
  scopedOrganization(scope);
  if (!isUuid(jobId)) return null;
  return translating(async () => {
    const [row] = await queryRows<{ workflow_run_id: string; step_key: string }>(
      executor,
      jobWorkflowStep(jobId, scope),
    );
    return row === undefined ? null : { workflowRunId: row.workflow_run_id, stepKey: row.step_key };
  });
}
