import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { enqueueJobs, enqueueWorkflowRun, queryRows } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { badAttemptStories, defineJob } from "../support/factories.ts";
import { startTs } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

// Sizes: a few minutes at most in `npm test`; RUNLEDGER_SOAK=1 for a long soak.
const SOAK = process.env.RUNLEDGER_SOAK === "1";
const PLAIN_JOBS = SOAK ? 20_000 : 3_000;
const WORKFLOW_RUNS = SOAK ? 200 : 30; // each 1 → 5 → 1: 7 jobs
const KILL_EVERY_MS = 1000;
// Plain jobs arrive in this many waves, one per kill, so every kill lands on live work however
// fast the workers drain the queue.
const WAVES = SOAK ? 120 : 30;

const { db, url } = await useTestDatabase();

function startWorker(n: number): ChildProcess {
  const child = startTs("test/fixtures/crash-worker.ts", [url, `crash-${n}`]);
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

describe("worker crashes", () => {
  it(
    `three workers, one SIGKILLed every second, lose and duplicate nothing (${PLAIN_JOBS} jobs + ${WORKFLOW_RUNS} workflows)`,
    async () => {
      await db.execute(sql`create schema reliability`);
      await db.execute(sql`create table reliability.effects (job_id uuid primary key)`);
      await db.execute(sql`create table reliability.executions (job_id uuid not null, worker_id text not null)`);
      await defineJob(db, "crash.effect", { maxAttempts: 25 });
      const wave = Math.ceil(PLAIN_JOBS / WAVES);
      let enqueued = 0;
      const enqueueWave = async () => {
        const size = Math.min(wave, PLAIN_JOBS - enqueued);
        if (size <= 0) return;
        await enqueueJobs(
          db,
          Array.from({ length: size }, () => ({ jobType: "crash.effect" })),
        );
        enqueued += size;
      };
      await enqueueWave();
      for (let r = 0; r < WORKFLOW_RUNS; r++) {
        const builder = WorkflowDagBuilder.new("crash.flow", {}).job("root", "crash.effect", {});
        for (let leaf = 0; leaf < 5; leaf++)
          builder.job(`leaf-${leaf}`, "crash.effect", {}).afterSuccess(`leaf-${leaf}`, ["root"]);
        await enqueueWorkflowRun(
          db,
          builder
            .job("final", "crash.effect", {})
            .afterSuccess("final", ["leaf-0", "leaf-1", "leaf-2", "leaf-3", "leaf-4"])
            .build(),
        );
      }
      const total = PLAIN_JOBS + WORKFLOW_RUNS * 7;

      let spawned = 0;
      const workers = [startWorker(spawned++), startWorker(spawned++), startWorker(spawned++)];
      let kills = 0;
      const remaining = async () => {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where status <> 'SUCCEEDED'`,
        );
        return row!.n;
      };
      try {
        // Kill a random worker every second while work remains, replacing it at once; a new wave
        // of plain jobs arrives with each kill.
        while (enqueued < PLAIN_JOBS || (await remaining()) > total / 10) {
          await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
          await enqueueWave();
          const victim = Math.floor(Math.random() * workers.length);
          workers[victim]!.kill("SIGKILL");
          kills++;
          workers[victim] = startWorker(spawned++);
        }
        await waitFor(async () => (await remaining()) === 0, {
          timeoutMs: SOAK ? 600_000 : 150_000,
          everyMs: 500,
          what: "every job to succeed",
        });
      } finally {
        for (const worker of workers) worker.kill("SIGTERM");
      }

      const [summary] = await queryRows<{
        jobs: number;
        succeeded: number;
        effects: number;
        executions: number;
        duplicate_executions: number;
        attempts: number;
        lease_expired_attempts: number;
        expired_leases: number;
        live_runs: number;
        succeeded_runs: number;
        bad_attempt_stories: number;
      }>(
        db,
        sql`select
          (select count(*)::int from runledger.job_queue) as jobs,
          (select count(*)::int from runledger.job_queue where status = 'SUCCEEDED') as succeeded,
          (select count(*)::int from reliability.effects) as effects,
          (select count(*)::int from reliability.executions) as executions,
          (select count(*)::int from (select job_id from reliability.executions group by job_id having count(*) > 1) d) as duplicate_executions,
          (select count(*)::int from runledger.job_attempts) as attempts,
          (select count(*)::int from runledger.job_attempts where outcome = 'LEASE_EXPIRED') as lease_expired_attempts,
          (select count(*)::int from runledger.job_queue where status = 'LEASED' and lease_expires_at < now()) as expired_leases,
          (select count(*)::int from runledger.workflow_runs where status in ('RUNNING', 'WAITING_FOR_EXTERNAL')) as live_runs,
          (select count(*)::int from runledger.workflow_runs where status = 'SUCCEEDED') as succeeded_runs,
          -- Every succeeded job: exactly one successful attempt, and it is the last one; every
          -- earlier attempt of that run ended (the reaper's LEASE_EXPIRED for killed workers).
          ${badAttemptStories(sql`(select * from runledger.job_queue where status = 'SUCCEEDED')`)} as bad_attempt_stories`,
      );
      // What the README's Reliability section reports.
      console.info(JSON.stringify({ ...summary, kills, workersStarted: spawned }));
      expect(kills).toBeGreaterThanOrEqual(WAVES - 1);
      expect(summary).toMatchObject({
        jobs: total,
        succeeded: total,
        effects: total,
        expired_leases: 0,
        live_runs: 0,
        succeeded_runs: WORKFLOW_RUNS,
        bad_attempt_stories: 0,
      });
      // Re-execution happens only for jobs whose worker died mid-attempt: never more executions
      // than attempts, and every extra execution is explained by a lease-expired attempt.
      expect(summary!.executions).toBeLessThanOrEqual(summary!.attempts);
      expect(summary!.duplicate_executions).toBeLessThanOrEqual(summary!.lease_expired_attempts);
      expect((await reapExpiredLeases(db, { limit: 100, retryDelayMs: 1000 })).processed).toBe(0);
    },
    SOAK ? 900_000 : 240_000,
  );
});
