import { type SQL, sql } from "drizzle-orm";
import type { DbRow } from "../rows.ts";
import { jobLogs, jobQueue } from "../schema/index.ts";
import { scopeCondition } from "./scope.ts";

/*
 * Job log lines' statements (src/store/logs.ts). Lines are scoped through their job: the job's
 * organization decides who may write or read them.
 */

export type JobLogRow = DbRow<typeof jobLogs>;

/**
 * Insert a log line for the job `line.jobId` if the scope sees it (no row otherwise). The job row
 * is key-share locked: a retention sweep skips the job while a line is being written, and a line
 * written after the sweep deleted the job finds no job.
 */
export function jobLogInsert(line: {
  jobId: string;
  runNumber: number;
  attempt: number | null;
  level: string;
  message: string;
  /** JSON text. */
  payload: string;
  scope: unknown;
}): SQL {
  return sql`insert into ${jobLogs} (job_id, run_number, attempt, level, message, payload)
    select id, ${line.runNumber}, ${line.attempt}, ${line.level}, ${line.message}, ${line.payload}::jsonb
    from ${jobQueue} where id = ${line.jobId} and ${scopeCondition(sql`organization_id`, line.scope)}
    for key share
    returning *`;
}

/** A page of the job's lines in id order (keyset on the id); one row more than `limit` says there is a next page. */
export function jobLogList(input: { jobId: string; scope: unknown; after?: number; limit: number }): SQL {
  return sql`select l.* from ${jobLogs} l join ${jobQueue} j on j.id = l.job_id
    where l.job_id = ${input.jobId} and ${scopeCondition(sql`j.organization_id`, input.scope)}
      ${input.after === undefined ? sql`` : sql`and l.id > ${input.after}`}
    order by l.id limit ${input.limit + 1}`;
}
