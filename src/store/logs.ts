import { sql } from "drizzle-orm";
import { type OrganizationScope, RunledgerError } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { toQueryError } from "./errors.ts";

import { queryRows } from "./query.ts";
import { type Page, type RawRow, toDate } from "./rows.ts";
import { jobLogs, jobQueue } from "./schema/index.ts";
import { scopeCondition } from "./scope.ts";
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

function logFromRow(row: RawRow): JobLogRecord {
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
  const visible = scopeCondition(sql`organization_id`, input?.scope);
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
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`insert into ${jobLogs} (job_id, run_number, attempt, level, message, payload)
        select id, ${input.runNumber}, ${input.attempt ?? null}, ${input.level}, ${input.message}, ${text}::jsonb
        from ${jobQueue} where id = ${input.jobId} and ${visible}
        for key share
        returning *`,
    );
    if (row === undefined) throw new RunledgerError("job.not_found", { details: { jobId: input.jobId } });
    return logFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * A job's log lines in order, a page at a time (`after`: the last line id seen). Scoped through
 * the job: another organization's job has no lines.
 */
export async function listJobLogs(
  executor: Executor,
  input: { jobId: string; scope: OrganizationScope; limit: number; after?: number },
): Promise<Page<JobLogRecord, number>> {
  const visible = scopeCondition(sql`j.organization_id`, input?.scope);
  checkLimit(input.limit);
  checkIdCursor(input.after);
  if (!isUuid(input.jobId)) return { items: [], next: null };
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select l.* from ${jobLogs} l join ${jobQueue} j on j.id = l.job_id
        where l.job_id = ${input.jobId} and ${visible}
          ${input.after === undefined ? sql`` : sql`and l.id > ${input.after}`}
        order by l.id limit ${input.limit + 1}`,
    );
    const items = rows.slice(0, input.limit).map(logFromRow);
    return { items, next: rows.length > input.limit ? items.at(-1)!.id : null };
  } catch (error) {
    throw toQueryError(error);
  }
}
