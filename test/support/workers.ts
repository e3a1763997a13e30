import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { type Executor, enqueueJobs, enqueueWorkflowRun, queryRows } from "../../src/store/index.ts";
import { badAttemptStories } from "./factories.ts";
import { finished, type ProcessResult, startTs } from "./processes.ts";

/** A `test/fixtures/worker-process.ts` child. */
export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  /** Resolves once the process listens for SIGTERM. */
  ready: Promise<void>;
  exit: Promise<ProcessResult>;
}

/** Start a worker process (see the fixture for `options`). */
export function startWorkerProcess(
  url: string,
  id: string,
  concurrency: number,
  options: Record<string, number | string | boolean> = {},
): WorkerProcess {
  const child = startTs("test/fixtures/worker-process.ts", [url, id, String(concurrency), JSON.stringify(options)]);
  const exit = finished(child);
  const ready = new Promise<void>((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("ready\n")) resolve();
    });
    exit.then((r) => reject(new Error(`worker ${id} exited before it was ready: ${r.stderr}`)), reject);
  });
  ready.catch(() => {});
  return { id, child, ready, exit };
}

/** The worker's exit, or undefined if it is still running `ms` from now. */
export function exitWithin(worker: WorkerProcess, ms: number): Promise<ProcessResult | undefined> {
  return Promise.race([worker.exit, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms))]);
}

/** What a worker process printed on a clean exit: its shutdown report and runtime event counts. */
export interface WorkerExit {
  abandoned: string[];
  seen: Record<string, number>;
}

export function parseWorkerExit(result: ProcessResult): WorkerExit {
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as WorkerExit;
}

/** Sum runtime event counts over several processes. */
export function sumSeen(exits: readonly WorkerExit[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const exit of exits) for (const [key, n] of Object.entries(exit.seen)) total[key] = (total[key] ?? 0) + n;
  return total;
}

/** SIGKILL whatever is still running (afterAll/finally cleanup). */
export function killAll(workers: readonly WorkerProcess[]): void {
  for (const worker of workers)
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGKILL");
}

/** The tables `effect.once` and the probes write to. */
export async function createEffectTables(db: Executor): Promise<void> {
  await db.execute(sql`create schema if not exists runledger_test`);
  await db.execute(
    sql`create table runledger_test.executions (job_id uuid not null, attempt int not null, worker_id text not null)`,
  );
  await db.execute(sql`create table runledger_test.effects_once (job_id uuid primary key)`);
  await db.execute(
    sql`create table runledger_test.probes (job_id uuid not null, worker_id text not null, reason text not null)`,
  );
}

/** Enqueue `plain` jobs and `runs` fan-out/fan-in workflows (root → 5 leaves → final: 7 jobs each). */
export async function enqueueEffectMix(db: Executor, jobType: string, plain: number, runs: number): Promise<number> {
  for (let i = 0; i < plain; i += 1000) {
    await enqueueJobs(
      db,
      Array.from({ length: Math.min(1000, plain - i) }, () => ({ jobType })),
    );
  }
  const leaves = ["leaf-0", "leaf-1", "leaf-2", "leaf-3", "leaf-4"];
  for (let r = 0; r < runs; r++) {
    const builder = WorkflowDagBuilder.new("effect.flow", {}).job("root", jobType, {});
    for (const leaf of leaves) builder.job(leaf, jobType, {}).afterSuccess(leaf, ["root"]);
    await enqueueWorkflowRun(db, builder.job("final", jobType, {}).afterSuccess("final", leaves).build());
  }
  return plain + runs * 7;
}

/** How the executions logged by `effect.once` (one plain row per run of the handler) square with the ledger. */
export interface ExecutionAccount {
  jobs: number;
  succeeded: number;
  effects: number;
  executions: number;
  /** Executions beyond one per job. */
  extra_executions: number;
  /** Jobs with more than one execution. */
  jobs_run_twice: number;
  lease_expired_attempts: number;
  retryable_attempts: number;
  leased_jobs: number;
  open_attempts: number;
  live_runs: number;
  succeeded_runs: number;
  bad_attempt_stories: number;
  /**
   * Executions not matched to an attempt of that job by that worker which either succeeded (at
   * most once per job) or lost its lease (the reaper took it back) or failed retryably.
   */
  unexplained_executions: number;
  /** Jobs whose successful attempt ran more than once. */
  successes_run_twice: number;
}

/** Count handler executions per job (not effects: an `on conflict do nothing` table cannot show duplicates) and match every extra one to an attempt. */
export async function accountExecutions(db: Executor, jobType = "effect.once"): Promise<ExecutionAccount> {
  const [row] = await queryRows<ExecutionAccount>(
    db,
    sql`with jobs as (select * from runledger.job_queue where job_type = ${jobType}),
      per_job as (select job_id, count(*)::int as n from runledger_test.executions group by job_id)
    select
      (select count(*)::int from jobs) as jobs,
      (select count(*)::int from jobs where status = 'SUCCEEDED') as succeeded,
      (select count(*)::int from runledger_test.effects_once) as effects,
      (select count(*)::int from runledger_test.executions) as executions,
      (select coalesce(sum(n - 1), 0)::int from per_job) as extra_executions,
      (select count(*)::int from per_job where n > 1) as jobs_run_twice,
      (select count(*)::int from runledger.job_attempts a join jobs j on j.id = a.job_id where a.outcome = 'LEASE_EXPIRED') as lease_expired_attempts,
      (select count(*)::int from runledger.job_attempts a join jobs j on j.id = a.job_id where a.outcome = 'RETRYABLE') as retryable_attempts,
      (select count(*)::int from runledger.job_queue where status = 'LEASED') as leased_jobs,
      (select count(*)::int from runledger.job_attempts where finished_at is null) as open_attempts,
      (select count(*)::int from runledger.workflow_runs where status in ('RUNNING', 'WAITING_FOR_EXTERNAL')) as live_runs,
      (select count(*)::int from runledger.workflow_runs where status = 'SUCCEEDED') as succeeded_runs,
      ${badAttemptStories(sql`jobs`)} as bad_attempt_stories,
      (select count(*)::int from runledger_test.executions e
        left join runledger.job_attempts a on a.job_id = e.job_id and a.attempt = e.attempt
        where a.job_id is null or a.worker_id <> e.worker_id
          or (a.outcome is not null and a.outcome not in ('LEASE_EXPIRED', 'RETRYABLE'))) as unexplained_executions,
      (select count(*)::int from (select e.job_id from runledger_test.executions e
        join runledger.job_attempts a on a.job_id = e.job_id and a.attempt = e.attempt and a.outcome is null
        group by e.job_id, e.attempt having count(*) > 1) d) as successes_run_twice`,
  );
  return row!;
}
