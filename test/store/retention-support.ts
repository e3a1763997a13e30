import { sql } from "drizzle-orm";
import { type Executor, queryRows } from "../../src/store/index.ts";
import { claimJobs, completeJobFailure, completeJobSuccess } from "../../src/store/worker.ts";

/** Far enough ahead that every finished row is older than any retention a test asks for. */
export const LATER = new Date(Date.now() + 365 * 86_400_000);

/**
 * Rows that lost what they belong to: ledger rows and log lines without their job, steps without
 * their run, edges or mutations without their run, jobs pointing at a step that is gone. Must all
 * be zero whatever a purge raced with.
 */
export async function orphans(db: Executor): Promise<Record<string, number>> {
  const [row] = await queryRows<Record<string, number>>(
    db,
    sql`select
      (select count(*)::int from runledger.job_attempt_log a where not exists (select 1 from runledger.job_queue j where j.id = a.job_id)) as attempts,
      (select count(*)::int from runledger.job_event_log e where not exists (select 1 from runledger.job_queue j where j.id = e.job_id)) as events,
      (select count(*)::int from runledger.job_logs l where not exists (select 1 from runledger.job_queue j where j.id = l.job_id)) as logs,
      (select count(*)::int from runledger.workflow_steps s where not exists (select 1 from runledger.workflow_runs r where r.id = s.workflow_run_id)) as steps,
      (select count(*)::int from runledger.workflow_step_dependencies e where not exists (select 1 from runledger.workflow_runs r where r.id = e.workflow_run_id)) as edges,
      (select count(*)::int from runledger.job_queue j where j.workflow_step_id is not null
        and not exists (select 1 from runledger.workflow_steps s where s.id = j.workflow_step_id)) as jobs,
      (select count(*)::int from runledger.workflow_steps s where s.job_id is not null
        and not exists (select 1 from runledger.job_queue j where j.id = s.job_id)) as step_jobs`,
  );
  return row!;
}

export const NO_ORPHANS = { attempts: 0, events: 0, logs: 0, steps: 0, edges: 0, jobs: 0, step_jobs: 0 };

/** Claim the jobs of `jobType` and settle each: succeed, or fail for good (`dead`). */
export async function runJobs(
  db: Executor,
  jobType: string,
  outcome: "succeed" | "dead" = "succeed",
): Promise<string[]> {
  const claimed = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1000, jobTypes: [jobType] });
  for (const job of claimed) {
    const lease = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" };
    if (outcome === "succeed") await completeJobSuccess(db, { lease });
    else await completeJobFailure(db, { lease, kind: "TERMINAL", code: "test.failed", message: "failed" });
  }
  return claimed.map((j) => j.id);
}

/** Steps, edges, jobs and mutations of each run, by run id (runs absent from the tables are absent here). */
export async function runShapes(
  db: Executor,
): Promise<Map<string, { status: string; steps: number; edges: number; jobs: number; mutations: number }>> {
  const rows = await queryRows<{
    id: string;
    status: string;
    steps: number;
    edges: number;
    jobs: number;
    mutations: number;
  }>(
    db,
    sql`select r.id, r.status::text,
      (select count(*)::int from runledger.workflow_steps s where s.workflow_run_id = r.id) as steps,
      (select count(*)::int from runledger.workflow_step_dependencies e where e.workflow_run_id = r.id) as edges,
      (select count(*)::int from runledger.workflow_steps s join runledger.job_queue j on j.id = s.job_id
        where s.workflow_run_id = r.id) as jobs,
      (select count(*)::int from runledger.workflow_run_mutations m where m.workflow_run_id = r.id) as mutations
    from runledger.workflow_runs r`,
  );
  return new Map(rows.map(({ id, ...shape }) => [id, shape]));
}
