import { type SQL, sql } from "drizzle-orm";
import { ALL_ORGANIZATIONS, MAX_WORKFLOW_STEPS, type OrganizationScope } from "../../src/core/index.ts";
import { type Executor, listWorkflowSteps, queryRows, schema, type WorkflowStepRecord } from "../../src/store/index.ts";

/** Insert (or overwrite) a job definition directly. */
export async function defineJob(
  db: Executor,
  jobType: string,
  values: Partial<typeof schema.jobDefinitions.$inferInsert> = {},
): Promise<void> {
  const row = { jobType, ...values };
  await db
    .insert(schema.jobDefinitions)
    .values(row)
    .onConflictDoUpdate({ target: schema.jobDefinitions.jobType, set: row });
}

/** Count rows of a runledger table, optionally filtered. */
export async function countRows(db: Executor, table: string, where = sql`true`): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    sql`select count(*)::int as n from ${sql.identifier("runledger")}.${sql.identifier(table)} where ${where}`,
  );
  return rows[0]!.n;
}

/** Every ledger table's row count, for "nothing was written" assertions. */
export async function ledgerCounts(db: Executor): Promise<Record<string, number>> {
  const tables = ["job_queue", "job_events", "job_attempts", "job_dead_letters", "workflow_runs", "workflow_steps"];
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = await countRows(db, table);
  return counts;
}

/** Move a job's lease deadline into the past, as if its worker had stalled. */
export async function expireLease(db: Executor, jobId: string): Promise<void> {
  await db.execute(
    sql`update runledger.job_queue set lease_expires_at = now() - interval '1 second' where id = ${jobId}`,
  );
}

/** Events of a job as `TYPE` strings in order. */
export async function eventTypes(db: Executor, jobId: string): Promise<string[]> {
  const rows = await queryRows<{ event_type: string }>(
    db,
    sql`select event_type from runledger.job_events where job_id = ${jobId} order by id`,
  );
  return rows.map((r) => r.event_type);
}

/**
 * How many jobs of `jobs` (a relation of job_queue rows) have attempts that do not tell the true
 * story: not exactly one successful attempt, an attempt left open, or a successful attempt that
 * is not the job's last.
 */
export function badAttemptStories(jobs: SQL): SQL {
  return sql`(select count(*)::int from ${jobs} j where (
    (select count(*) from runledger.job_attempts a where a.job_id = j.id and a.finished_at is not null and a.outcome is null) <> 1
    or exists (select 1 from runledger.job_attempts a where a.job_id = j.id and a.finished_at is null)
    or (select max(a.attempt) from runledger.job_attempts a where a.job_id = j.id and a.outcome is null) <> j.attempt
  ))`;
}

/** Every step of a run (one page: a run holds at most `MAX_WORKFLOW_STEPS`), in `scope` (default: every organization). */
export async function runSteps(
  db: Executor,
  workflowRunId: string,
  scope: OrganizationScope = ALL_ORGANIZATIONS,
): Promise<WorkflowStepRecord[]> {
  return (await listWorkflowSteps(db, { workflowRunId, scope, limit: MAX_WORKFLOW_STEPS })).items;
}
