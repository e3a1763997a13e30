import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { RETURNED_UNSTARTED } from "../../src/runtime/index.ts";
import { queryRows } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { badAttemptStories, defineJob } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";
import {
  createEffectTables,
  enqueueEffectMix,
  killAll,
  parseWorkerExit,
  startWorkerProcess,
  type WorkerProcess,
} from "../support/workers.ts";

// Sizes: well under a minute in `npm test`; RUNLEDGER_SOAK=1 for a bigger burst.
const SOAK = process.env.RUNLEDGER_SOAK === "1";
const PLAIN_JOBS = SOAK ? 20_000 : 2_000;
const WORKFLOW_RUNS = SOAK ? 200 : 20; // each 1 → 5 → 1: 7 jobs
const WORKERS = SOAK ? 6 : 3;
const SHUTDOWN_MS = 5000;
// Handlers work 5 ms; each process claims a batch ahead of its 8 slots, so a SIGTERM always
// finds running handlers and claimed jobs that never started.
const WORKER_OPTIONS = { workMs: 5, shutdownMs: SHUTDOWN_MS, claimBatchSize: 32, pollIntervalMs: 100 };

const { db, url } = await useTestDatabase();
const workers: WorkerProcess[] = [];
afterAll(() => killAll(workers));

async function counts() {
  const [row] = await queryRows<{ succeeded: number; executions: number }>(
    db,
    sql`select (select count(*)::int from runledger.job_queue where status = 'SUCCEEDED') as succeeded,
      (select count(*)::int from runledger_test.executions) as executions`,
  );
  return row!;
}

describe("shutdown under load", () => {
  it(
    `${WORKERS} workers SIGTERMed mid-burst exit on their own, finish or hand back their jobs, and lose nothing (${PLAIN_JOBS} jobs + ${WORKFLOW_RUNS} workflows)`,
    async () => {
      await createEffectTables(db);
      await defineJob(db, "effect.once", { maxAttempts: 25 });
      const total = await enqueueEffectMix(db, "effect.once", PLAIN_JOBS, WORKFLOW_RUNS);
      for (let n = 0; n < WORKERS; n++) workers.push(startWorkerProcess(url, `burst-${n}`, 8, WORKER_OPTIONS));
      for (const worker of workers) await worker.ready;

      // Mid-burst: every process has run jobs, a third of the work is done, most is still queued.
      await waitFor(
        async () => {
          const [row] = await queryRows<{ busy: number; succeeded: number }>(
            db,
            sql`select (select count(distinct worker_id)::int from runledger_test.executions) as busy,
              (select count(*)::int from runledger.job_queue where status = 'SUCCEEDED') as succeeded`,
          );
          return row!.busy === WORKERS && row!.succeeded >= total / 3;
        },
        { timeoutMs: 60_000, everyMs: 50, what: "the burst to be under way" },
      );
      const atSignal = await counts();
      expect(atSignal.succeeded).toBeLessThan(total / 2);

      // SIGTERM one process every 200 ms (the others keep claiming), timing each exit.
      const exitMs: number[] = [];
      const exits = [];
      for (const worker of workers) {
        const signalled = performance.now();
        worker.child.kill("SIGTERM");
        exits.push(
          worker.exit.then((result) => {
            exitMs.push(Math.round(performance.now() - signalled));
            return result;
          }),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const results = await Promise.all(exits);
      expect(results.map((r) => [r.code, r.signal])).toEqual(workers.map(() => [0, null]));
      expect(Math.max(...exitMs)).toBeLessThan(SHUTDOWN_MS);
      const abandoned = results.flatMap((r) => parseWorkerExit(r).abandoned);

      // Nothing is left in a worker's hands: every job is either done or claimable again.
      const [after] = await queryRows<{
        pending: number;
        leased: number;
        elsewhere: number;
        open_attempts: number;
        returned: number;
        returned_jobs: number;
        bad_returns: number;
        shutdown_failures: number;
      }>(
        db,
        sql`with returned as (
          select job_id, attempt from runledger.job_events
          where event_type = 'REQUEUED' and payload->>'reason' = ${RETURNED_UNSTARTED}
        )
        select
          (select count(*)::int from runledger.job_queue where status = 'PENDING') as pending,
          (select count(*)::int from runledger.job_queue where status = 'LEASED') as leased,
          -- Workflow dependents get their job when released; every job there is must be done or pending.
          (select count(*)::int from runledger.job_queue where status not in ('SUCCEEDED', 'PENDING')) as elsewhere,
          (select count(*)::int from runledger.job_attempts where finished_at is null) as open_attempts,
          (select count(*)::int from returned) as returned,
          (select count(distinct job_id)::int from returned) as returned_jobs,
          -- A returned claim consumed no attempt: the job is pending at the attempt it had before
          -- the claim, the claim's attempt row is gone, and its handler never ran.
          (select count(*)::int from returned r join runledger.job_queue j on j.id = r.job_id
            where j.status <> 'PENDING' or j.attempt <> r.attempt - 1
              or exists (select 1 from runledger.job_attempts a where a.job_id = r.job_id and a.attempt = r.attempt)
              or exists (select 1 from runledger_test.executions e where e.job_id = r.job_id)) as bad_returns,
          -- An attempt abandoned at the deadline writes nothing: it stays open until the reaper.
          (select count(*)::int from runledger.job_attempts where error_code = 'job.worker_shutdown') as shutdown_failures`,
      );
      expect(after).toMatchObject({
        leased: abandoned.length,
        elsewhere: 0,
        open_attempts: abandoned.length,
        bad_returns: 0,
        shutdown_failures: 0,
      });
      expect(after!.returned).toBeGreaterThan(0);
      expect(after!.pending).toBeGreaterThan(0);

      // A fresh worker drains the rest.
      const fresh = startWorkerProcess(url, "drain", 16, WORKER_OPTIONS);
      workers.push(fresh);
      await waitFor(async () => (await counts()).succeeded === total, {
        timeoutMs: SOAK ? 600_000 : 60_000,
        everyMs: 250,
        what: "the fresh worker to drain the queue",
      });
      fresh.child.kill("SIGTERM");
      expect((await fresh.exit).code).toBe(0);

      const [summary] = await queryRows<{
        jobs: number;
        succeeded: number;
        effects: number;
        executions: number;
        duplicate_executions: number;
        attempts: number;
        jobs_past_attempt_1: number;
        live_runs: number;
        succeeded_runs: number;
        bad_attempt_stories: number;
      }>(
        db,
        sql`select
          (select count(*)::int from runledger.job_queue) as jobs,
          (select count(*)::int from runledger.job_queue where status = 'SUCCEEDED') as succeeded,
          (select count(*)::int from runledger_test.effects_once) as effects,
          (select count(*)::int from runledger_test.executions) as executions,
          (select count(*)::int from (select job_id from runledger_test.executions group by job_id having count(*) > 1) d) as duplicate_executions,
          (select count(*)::int from runledger.job_attempts) as attempts,
          (select count(*)::int from runledger.job_queue where attempt <> 1) as jobs_past_attempt_1,
          (select count(*)::int from runledger.workflow_runs where status <> 'SUCCEEDED') as live_runs,
          (select count(*)::int from runledger.workflow_runs where status = 'SUCCEEDED') as succeeded_runs,
          ${badAttemptStories(sql`runledger.job_queue`)} as bad_attempt_stories`,
      );
      const figures = {
        ...summary,
        processes_signalled: WORKERS,
        exit_ms: exitMs,
        shutdown_ms: SHUTDOWN_MS,
        succeeded_at_signal: atSignal.succeeded,
        returned_claims: after!.returned,
        left_for_fresh_worker: after!.pending,
        abandoned: abandoned.length,
        lost: total - summary!.effects,
      };
      // What the README's Reliability section reports.
      console.info(JSON.stringify(figures));

      expect(summary).toMatchObject({
        jobs: total,
        succeeded: total,
        effects: total,
        live_runs: 0,
        succeeded_runs: WORKFLOW_RUNS,
        bad_attempt_stories: 0,
      });
      // Exactly once: a clean shutdown re-runs nothing. A handler still running at the deadline
      // would be the only exception (its lease left to run out and the reaper to retry it);
      // 5 ms handlers never are.
      expect(abandoned).toEqual([]);
      expect(summary!.duplicate_executions).toBe(abandoned.length);
      expect(summary!.executions).toBe(total + abandoned.length);
      expect(summary!.attempts).toBe(total + abandoned.length);
      expect(summary!.jobs_past_attempt_1).toBe(abandoned.length);
      expect((await reapExpiredLeases(db, { limit: 100, retryDelayMs: 1000 })).processed).toBe(0);
    },
    SOAK ? 900_000 : 120_000,
  );
});
