import { type OrganizationScope, RunledgerError, scopedOrganization } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { translating } from "./errors.ts";
import { queryRows } from "./query.ts";
import { type Page, toDate } from "./rows.ts";
import { type JobLogRow, jobLogInsert, jobLogList } from "./sql/logs.ts";
import {
  checkIdCursor,
  checkIdentifierLength,
  checkLimit,
  checkTextSize,
  fail,
  isBlank,
  isInt32,
  isStorableText,
  isUuid,
  jsonText,
} from "./validate.ts";

export interface JobLogRecord {
  id: number;
  jobId: string;
  runNumber: number;
  attempt: number | null;
  level: string;
  message: string;
  payload: Record<string, unknown>;
  occurredAt: Date;
}

export interface JobLogInput {
  /** The organization the job must belong to, or `ALL_ORGANIZATIONS`. */
  scope: OrganizationScope;
  jobId: string;
  runNumber: number;
  attempt?: number | null;
  level: string;
  message: string;
  payload?: Record<string, unknown>;
}

function logFromRow(row: JobLogRow): JobLogRecord {
  return {
    id: Number(row.id),
    jobId: row.job_id,
    runNumber: Number(row.run_number),
    attempt: row.attempt === null ? null : Number(row.attempt),
    level: row.level,
    message: row.message,
    payload: row.payload,
    occurredAt: toDate(row.occurred_at),
  };
}

/**
 * Attach a log line to a job run (handlers call it through `context.log`). `job.not_found` for a
 * job that does not exist or is outside `scope` alike, so a log line reveals no other
 * organization's job ids.
 * The job row is key-share locked: a retention sweep skips the job while a line is being
 * written, and a line written after the sweep deleted the job is refused.
 */
export async function insertJobLog(executor: Executor, input: JobLogInput): Promise<JobLogRecord> {
  scopedOrganization(input?.scope);
  if (!isUuid(input.jobId)) fail("job.not_found");
  if (!isInt32(input.runNumber) || input.runNumber <= 0) fail("job.invalid_log", { field: "runNumber" });
  if (input.attempt != null && (!isInt32(input.attempt) || input.attempt < 0))
    fail("job.invalid_log", { field: "attempt" });
  for (const field of ["level", "message"] as const) {
    if (isBlank(input[field]) || !isStorableText(input[field])) fail("job.invalid_log", { field });
  }
  checkIdentifierLength(input.level, "level");
  checkTextSize(input.message, "message");
  const payload = input.payload ?? {};
  if (payload === null || typeof payload !== "object" || Array.isArray(payload))
    fail("job.invalid_log", { field: "payload" });
  const text = jsonText(payload, "job.invalid_log", "payload");
  return translating(async () => {
    const [row] = await queryRows<JobLogRow>(
      executor,
      jobLogInsert({
        jobId: input.jobId,
        runNumber: input.runNumber,
        attempt: input.attempt ?? null,
        level: input.level,
        message: input.message,
        payload: text,
        scope: input.scope,
      }),
    );
    if (row === undefined) throw new RunledgerError("job.not_found", { details: { jobId: input.jobId } });
    return logFromRow(row);
  });
}

/**
 * A job's log lines in order, a page at a time (`after`: the last line id seen). Scoped through
 * the job: another organization's job has no lines.
 */
export async function listJobLogs(
  executor: Executor,
  input: { jobId: string; scope: OrganizationScope; limit: number; after?: number },
): Promise<Page<JobLogRecord, number>> {
  scopedOrganization(input?.scope);
  checkLimit(input.limit);
  checkIdCursor(input.after);
  if (!isUuid(input.jobId)) return { items: [], next: null };
  return translating(async () => {
    const rows = await queryRows<JobLogRow>(
      executor,
      jobLogList({ jobId: input.jobId, scope: input.scope, after: input.after, limit: input.limit }),
    );
    const items = rows.slice(0, input.limit).map(logFromRow);
    return { items, next: rows.length > input.limit ? items.at(-1)!.id : null };
  });
}
