// The server stops while a worker's connections are new. Left to its default, postgres.js 3.4.9
// opens every connection with a catalog query for the array types whose promise nobody holds;
// when the server goes away while that query runs, the promise rejects unhandled and the worker
// process exits (`connect ECONNREFUSED`, porsager/postgres#1192; see `fetch_types` in
// src/store/db.ts). To stop the server at exactly that moment, the test holds pg_type locked, so
// a new connection's first query waits for it, and restarts the throwaway cluster in immediate
// mode once a query of the worker waits. Three times: each restart leaves the worker with new
// connections only. The worker stays alive, finishes its jobs, and exits when told to.
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { createDb, migrate, queryRows } from "../../src/store/index.ts";
import { defineJob } from "../support/factories.ts";
import { type Cluster, startCluster } from "../support/servers.ts";
import { waitFor } from "../support/wait.ts";
import {
  createEffectTables,
  enqueueEffectMix,
  exitWithin,
  killAll,
  startWorkerProcess,
  type WorkerProcess,
} from "../support/workers.ts";

const RESTARTS = 3;
const JOBS = 200;
const WORKER_ID = "new-connections";
/** Its shutdown deadline (10 s, the fixture's default) with room to spare: nothing runs by then. */
const EXIT_WITHIN_MS = 20_000;

const cluster: Cluster = await startCluster({ maxConnections: 40 });
const url = cluster.url("postgres");
const db = createDb(url, { max: 1, applicationName: "runledger-observer" });
const workers: WorkerProcess[] = [];
afterAll(async () => {
  killAll(workers);
  await db.$runledger.close({ timeoutSeconds: 1 });
  await cluster.destroy();
});

/**
 * Lock pg_type in a transaction of a connection of its own (its first query sent as plain text,
 * which postgres.js allows on a one-connection client), so any new backend's first catalog
 * lookup waits; resolves once the lock is held. The restart ends the transaction.
 */
async function lockTypes(): Promise<postgres.Sql> {
  const locker = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
  await locker.unsafe("begin; lock table pg_catalog.pg_type in access exclusive mode");
  return locker;
}

/** The queries of the worker waiting for the lock (read in the locking transaction itself). */
async function waitingQueries(locker: postgres.Sql): Promise<string[]> {
  await locker`select pg_stat_clear_snapshot()`;
  const rows = await locker<{ query: string }[]>`
    select query from pg_stat_activity
    where application_name = ${`runledger-${WORKER_ID}`} and wait_event_type = 'Lock' and query not ilike 'listen%'`;
  return rows.map((r) => r.query.trim().replace(/\s+/g, " "));
}

async function expectAlive(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) return;
  expect.fail(`the worker exited: ${(await worker.exit).stderr}`);
}

it(`a worker lives through ${RESTARTS} immediate restarts that find its new connections' first queries waiting, and finishes its jobs`, async () => {
  await migrate(db);
  await createEffectTables(db);
  await defineJob(db, "effect.once", { maxAttempts: 25 });
  await enqueueEffectMix(db, "effect.once", JOBS, 0);

  for (let n = 0; n < RESTARTS; n++) {
    const locker = await lockTypes();
    // First the lock, then the worker: even its very first connection finds the lock held.
    if (n === 0) {
      workers.push(
        startWorkerProcess(url, WORKER_ID, 8, {
          workMs: 1,
          pollIntervalMs: 100,
          // A job claimed between two restarts may lose its completion to the next one: the
          // reaper takes it back once its lease (10 s, the least) has run out, and retries it soon.
          reaperIntervalMs: 1000,
          reaperRetryDelayMs: 1000,
          poolMax: 4,
        }),
      );
    }
    const waiting = await waitFor(
      async () => {
        await expectAlive(workers[0]!);
        const queries = await waitingQueries(locker);
        return queries.length > 0 ? queries : undefined;
      },
      { timeoutMs: 20_000, everyMs: 50, what: "a query of the worker to wait for the lock" },
    );
    expect(waiting.length).toBeGreaterThan(0);
    await cluster.restart("immediate");
    await locker.end({ timeout: 0 });
    // The driver met the stopped server during the restart (it reconnects for the waiting
    // statement at once); each wait below fails as soon as the worker has exited.
  }

  await waitFor(
    async () => {
      await expectAlive(workers[0]!);
      const [row] = await queryRows<{ n: number }>(
        db,
        sql`select count(*)::int as n from runledger.job_queue where status = 'SUCCEEDED'`,
      ).catch(() => [{ n: -1 }]);
      return row!.n === JOBS;
    },
    { timeoutMs: 30_000, everyMs: 100, what: "every job to succeed after the restarts" },
  );
  // It exits, too: a connection it was still reopening when its handle closed kept it alive once
  // (see test/store/close-after-outage.test.ts).
  workers[0]!.child.kill("SIGTERM");
  const exit = await exitWithin(workers[0]!, EXIT_WITHIN_MS);
  if (exit === undefined) expect.fail(`the worker was still running ${EXIT_WITHIN_MS / 1000} s after SIGTERM`);
  expect(exit.code, exit.stderr).toBe(0);
}, 90_000);
