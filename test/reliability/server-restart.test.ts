// A real server restart, not terminated backends: the test initdb's a throwaway cluster on a free
// port, runs worker processes against it with plain jobs and workflows in flight, and restarts the
// server three times (`pg_ctl restart -m fast`, then `-m immediate` twice: a crash and recovery).
// The workers are never restarted; they reconnect and finish the work.
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { createDb, migrate, queryRows } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { defineJob } from "../support/factories.ts";
import { type Cluster, startCluster } from "../support/servers.ts";
import { waitFor } from "../support/wait.ts";
import {
  accountExecutions,
  createEffectTables,
  enqueueEffectMix,
  killAll,
  parseWorkerExit,
  startWorkerProcess,
  sumSeen,
  type WorkerProcess,
} from "../support/workers.ts";

const SOAK = process.env.RUNLEDGER_SOAK === "1";
const PLAIN_JOBS = SOAK ? 20_000 : 3_000;
const WORKFLOW_RUNS = SOAK ? 200 : 30; // each 1 → 5 → 1: 7 jobs
const WORKERS = 3;
const RESTARTS = ["fast", "immediate", "immediate"] as const;
const WORKER_OPTIONS = {
  workMs: 5,
  leaseTtlSeconds: 10,
  pollIntervalMs: 100,
  reaperIntervalMs: 1_000,
  reaperRetryDelayMs: 1000,
  poolMax: 4,
};

const cluster: Cluster = await startCluster({ maxConnections: 60 });
const url = cluster.url("postgres");
const db = createDb(url, { max: 2, applicationName: "runledger-observer" });
const workers: WorkerProcess[] = [];
afterAll(async () => {
  killAll(workers);
  await db.$runledger.close({ timeoutSeconds: 1 });
  await cluster.destroy();
});

/** The observer's query, retried while the server is down or its connection is being replaced. */
async function observe<T>(query: Parameters<typeof queryRows>[1]): Promise<T[]> {
  return waitFor(
    async () => {
      try {
        return await queryRows<T>(db, query);
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 60_000, everyMs: 100, what: "the server to answer the observer" },
  );
}

async function succeeded(): Promise<number> {
  const [row] = await observe<{ n: number }>(
    sql`select count(*)::int as n from runledger.job_queue where status = 'SUCCEEDED'`,
  );
  return row!.n;
}

/** Fail at once, with its stderr, when a worker process has died instead of reconnecting. */
async function expectAllAlive(): Promise<void> {
  const died = workers.filter((w) => w.child.exitCode !== null || w.child.signalCode !== null);
  expect(await Promise.all(died.map(async (w) => `${w.id}: ${(await w.exit).stderr}`))).toEqual([]);
}

describe("real server restarts", () => {
  it(
    `${WORKERS} workers ride out ${RESTARTS.length} restarts (${RESTARTS.join(", ")}) with ${PLAIN_JOBS} jobs + ${WORKFLOW_RUNS} workflows in flight`,
    async () => {
      await migrate(db);
      await createEffectTables(db);
      await defineJob(db, "effect.once", { maxAttempts: 25 });
      const total = await enqueueEffectMix(db, "effect.once", PLAIN_JOBS, WORKFLOW_RUNS);
      for (let n = 0; n < WORKERS; n++) workers.push(startWorkerProcess(url, `server-${n}`, 8, WORKER_OPTIONS));
      for (const worker of workers) await worker.ready;

      // Each restart comes once the workers have made progress since the last one, so every
      // restart finds work in flight and every recovery is proven by more progress.
      const progress: number[] = [];
      let before = await succeeded();
      for (const mode of RESTARTS) {
        await waitFor(async () => (await succeeded()) >= before + total / 10, {
          timeoutMs: 120_000,
          everyMs: 100,
          what: "the workers to make progress before the restart",
        });
        await cluster.restart(mode);
        await expectAllAlive();
        before = await succeeded();
        progress.push(before);
        expect(before).toBeLessThan(total);
      }
      await waitFor(
        async () => {
          await expectAllAlive();
          return (await succeeded()) === total;
        },
        { timeoutMs: SOAK ? 600_000 : 180_000, everyMs: 250, what: "every job to succeed after the restarts" },
      );

      for (const worker of workers) worker.child.kill("SIGTERM");
      const exits = await Promise.all(workers.map((w) => w.exit));
      expect(
        exits.map((e) => e.code),
        exits.map((e) => e.stderr).join("\n"),
      ).toEqual(workers.map(() => 0));
      const seen = sumSeen(exits.map(parseWorkerExit));
      const account = await accountExecutions(db);
      const [runs] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger.workflow_runs`);
      // What the README's Reliability section reports.
      console.info(
        JSON.stringify({
          restarts: RESTARTS,
          succeeded_after_restart: progress,
          lost: total - account.effects,
          ...account,
          seen,
        }),
      );

      expect(account).toMatchObject({
        jobs: total,
        succeeded: total,
        effects: total,
        leased_jobs: 0,
        open_attempts: 0,
        live_runs: 0,
        succeeded_runs: WORKFLOW_RUNS,
        bad_attempt_stories: 0,
        unexplained_executions: 0,
        successes_run_twice: 0,
      });
      expect(runs!.n).toBe(WORKFLOW_RUNS);
      // At least once: every extra execution belongs to an attempt that lost its lease (taken back
      // by the reaper) or failed retryably (its handler's own query died with the server).
      expect(account.extra_executions).toBeLessThanOrEqual(account.lease_expired_attempts + account.retryable_attempts);
      expect(seen["dead_lettered.job.handler_panic"]).toBeUndefined();
      // The faults reached the workers.
      expect(Object.values(seen).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect((await reapExpiredLeases(db, { limit: 100, retryDelayMs: 1000 })).processed).toBe(0);
    },
    SOAK ? 900_000 : 300_000,
  );
});
