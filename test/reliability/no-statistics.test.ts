import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { enqueueJobs, queryRows, type RunledgerDb } from "../../src/store/index.ts";
import { setupEphemeralDatabase } from "../../src/testing/index.ts";
import { badAttemptStories } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

/*
 * The planner decides nothing about correctness. A worker on a database whose tables were never
 * analyzed (or analyzed while the queue was empty, as after a deploy) must still run every job
 * exactly once: the batched success must stay on primary-key lookups whatever the estimates, and
 * the worker must not keep leasing while its successes wait to be written (leases would run out
 * and handlers run twice).
 */
const JOBS = 50_000;
const TABLES = ["job_queue", "job_attempt_log", "job_event_log", "workflow_steps", "workflow_runs"];

const running: Supervisor[] = [];
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const supervisor of running.splice(0)) await supervisor.shutdown(5000);
  for (const teardown of cleanup.splice(0)) await teardown();
});

async function freezeStatistics(db: RunledgerDb, analyzeFirst: boolean): Promise<void> {
  if (analyzeFirst) await db.execute(sql`analyze`);
  for (const table of TABLES) {
    await db.execute(
      sql`alter table if exists ${sql.identifier("runledger")}.${sql.identifier(table)} set (autovacuum_enabled = false)`,
    );
  }
}

async function runAll(db: RunledgerDb): Promise<Map<string, number>> {
  const executions = new Map<string, number>();
  const catalog = new JobCatalog().job("nostats.job", async (_payload, context) => {
    executions.set(context.jobId, (executions.get(context.jobId) ?? 0) + 1);
  });
  await catalog.syncDefinitions(db);
  for (let i = 0; i < JOBS; i += 1000) {
    await enqueueJobs(
      db,
      Array.from({ length: 1000 }, (_, k) => ({ jobType: "nostats.job", payload: { n: i + k } })),
    );
  }
  const supervisor = Supervisor.builder(
    db,
    JobsConfig.from({ maxGlobalConcurrency: 10, claimBatchSize: 500, pollIntervalMs: 50 }),
  )
    .withCatalog(catalog)
    .build();
  running.push(supervisor);
  supervisor.start();
  await waitFor(
    async () => {
      const [row] = await queryRows<{ n: number }>(
        db,
        sql`select count(*)::int as n from runledger.job_queue where status = 'SUCCEEDED'`,
      );
      return row!.n === JOBS;
    },
    { timeoutMs: 240_000, everyMs: 250, what: `${JOBS} jobs to succeed` },
  );
  await supervisor.shutdown(10_000);
  return executions;
}

async function expectExactlyOnce(db: RunledgerDb, executions: Map<string, number>): Promise<void> {
  const counts = [...executions.values()];
  expect(executions.size).toBe(JOBS);
  expect(counts.filter((n) => n !== 1)).toEqual([]);
  const [ledger] = await queryRows<{ attempts: number; bad: number }>(
    db,
    sql`select (select count(*)::int from runledger.job_attempts) as attempts,
      ${badAttemptStories(sql`runledger.job_queue`)} as bad`,
  );
  expect(ledger).toEqual({ attempts: JOBS, bad: 0 });
}

describe("without planner statistics", () => {
  it(`runs ${JOBS.toLocaleString("en-US")} jobs exactly once on tables never analyzed`, async () => {
    const { db, teardown } = await setupEphemeralDatabase();
    cleanup.push(teardown);
    await freezeStatistics(db, false);
    const [stats] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from pg_stats where schemaname = 'runledger' and tablename = 'job_queue'`,
    );
    expect(stats!.n).toBe(0);
    await expectExactlyOnce(db, await runAll(db));
  }, 300_000);

  it(`runs ${JOBS.toLocaleString("en-US")} jobs exactly once on tables analyzed while empty`, async () => {
    const { db, teardown } = await setupEphemeralDatabase();
    cleanup.push(teardown);
    await freezeStatistics(db, true);
    await expectExactlyOnce(db, await runAll(db));
  }, 300_000);
});
