// Many worker processes on one database, as a fleet scales out: 4 processes × 25 handlers, each
// with a pool of 8 (36 connections with their LISTEN sessions), share 50,000 jobs and 200
// fan-out/fan-in workflows. Without faults every job must run exactly once, counted per execution
// (a plain insert per run of the handler, not the effect table, whose ON CONFLICT hides repeats).
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
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

const PLAIN_JOBS = 50_000;
const WORKFLOW_RUNS = 200; // each 1 → 5 → 1: 7 jobs
const PROCESSES = 4;
const CONCURRENCY = 25;
const WORKER_OPTIONS = {
  workMs: 1,
  poolMax: 8,
  claimBatchSize: 25,
  pollIntervalMs: 200,
  // Generous: a loaded machine must not turn a slow heartbeat into a second execution here.
  leaseTtlSeconds: 60,
  reaperIntervalMs: 5_000,
};

const { db, url } = await useTestDatabase({ max: 2 });
const workers: WorkerProcess[] = [];
afterAll(() => killAll(workers));

describe("many worker processes", () => {
  it(`${PROCESSES} processes × ${CONCURRENCY} run ${PLAIN_JOBS} jobs + ${WORKFLOW_RUNS} workflows exactly once`, async () => {
    await createEffectTables(db);
    await defineJob(db, "effect.once", { maxAttempts: 5 });
    const total = await enqueueEffectMix(db, "effect.once", PLAIN_JOBS, WORKFLOW_RUNS);
    for (let n = 0; n < PROCESSES; n++) {
      workers.push(startWorkerProcess(url, `fleet-${n}`, CONCURRENCY, WORKER_OPTIONS));
    }
    for (const worker of workers) await worker.ready;

    let connections = 0;
    await waitFor(
      async () => {
        const died = workers.filter((w) => w.child.exitCode !== null || w.child.signalCode !== null);
        if (died.length > 0) throw new Error(`${died[0]!.id} died: ${(await died[0]!.exit).stderr}`);
        const [row] = await queryRows<{ n: number; connections: number }>(
          db,
          sql`select (select count(*)::int from runledger.job_queue where status <> 'SUCCEEDED') as n,
              (select count(*)::int from pg_stat_activity where datname = current_database()) as connections`,
        );
        connections = Math.max(connections, row!.connections);
        return row!.n === 0;
      },
      { timeoutMs: 600_000, everyMs: 500, what: "every job to succeed" },
    );

    for (const worker of workers) worker.child.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exit));
    expect(
      exits.map((e) => e.code),
      exits.map((e) => e.stderr).join("\n"),
    ).toEqual(workers.map(() => 0));
    const seen = sumSeen(exits.map(parseWorkerExit));
    const account = await accountExecutions(db);
    const perWorker = await queryRows<{ worker_id: string; n: number }>(
      db,
      sql`select worker_id, count(*)::int as n from runledger_test.executions group by worker_id order by worker_id`,
    );
    console.info(JSON.stringify({ peak_connections: connections, ...account, per_worker: perWorker, seen }));

    expect(account).toMatchObject({
      jobs: total,
      succeeded: total,
      effects: total,
      // Exactly once: one execution per job, no attempt taken back or failed.
      executions: total,
      extra_executions: 0,
      lease_expired_attempts: 0,
      retryable_attempts: 0,
      leased_jobs: 0,
      open_attempts: 0,
      live_runs: 0,
      succeeded_runs: WORKFLOW_RUNS,
      bad_attempt_stories: 0,
      unexplained_executions: 0,
    });
    expect(perWorker.map((r) => r.worker_id)).toEqual(workers.map((w) => w.id));
    expect(connections).toBeLessThanOrEqual(PROCESSES * (WORKER_OPTIONS.poolMax + 1) + 3);
    expect(seen).toEqual({});
    expect((await reapExpiredLeases(db, { limit: 100, retryDelayMs: 1000 })).processed).toBe(0);
  }, 900_000);
});
