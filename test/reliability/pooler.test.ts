// Everything through PgBouncer in transaction mode, as a fleet behind a pooler runs: two worker
// processes (one with a direct LISTEN connection, one polling) and three enqueuers share a pool
// of 6 server connections. Needs Debian's `pgbouncer` (the test starts its own; .ci/run installs it).
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunledgerError, WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  createDb,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  queryRows,
  type RunledgerDb,
  setJobScheduleActive,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { type PgBouncer, startPgBouncer } from "../support/servers.ts";
import { waitFor } from "../support/wait.ts";
import {
  accountExecutions,
  createEffectTables,
  killAll,
  parseWorkerExit,
  startWorkerProcess,
  type WorkerProcess,
} from "../support/workers.ts";

const PLAIN_JOBS = 1_500;
const SINGLE_JOBS = 150;
const WORKFLOW_RUNS = 20;
const SERVER_POOL = 6;
const WORKER_OPTIONS = {
  workMs: 2,
  pollIntervalMs: 100,
  poolMax: 4,
  pooled: true,
  reaperIntervalSeconds: 1,
  schedulePollIntervalSeconds: 1,
};

const { db, url } = await useTestDatabase();
const database = new URL(url).pathname.slice(1);
const workers: WorkerProcess[] = [];
const handles: RunledgerDb[] = [];
let bouncer: PgBouncer | undefined;
// One pooler for the file, so each test can run alone.
beforeAll(async () => {
  bouncer = await startPgBouncer(
    { host: "127.0.0.1", port: Number(new URL(url).port || 5432) },
    { poolSize: SERVER_POOL },
  );
});
afterAll(async () => {
  killAll(workers);
  await Promise.all(handles.map((h) => h.$runledger.close()));
  await bouncer?.stop();
});

function pooledDb(name: string): RunledgerDb {
  const handle = createDb(bouncer!.url(database), { pooled: true, max: 8, applicationName: name });
  handles.push(handle);
  return handle;
}

/** One enqueuer: single jobs, batches, workflows (twice with one idempotency key) and a job in the application's own transaction. */
async function enqueuer(handle: RunledgerDb, n: number): Promise<number> {
  let jobs = 0;
  for (let i = 0; i < SINGLE_JOBS / 3; i++, jobs++) await enqueueJob(handle, { jobType: "effect.once" });
  for (let i = 0; i < PLAIN_JOBS / 3; i += 100, jobs += 100) {
    await enqueueJobs(
      handle,
      Array.from({ length: 100 }, () => ({ jobType: "effect.once" })),
    );
  }
  for (let r = 0; r < WORKFLOW_RUNS / 2; r++) {
    const builder = WorkflowDagBuilder.new("effect.flow", {})
      .idempotencyKey(`flow-${n}-${r}`)
      .job("root", "effect.once", {});
    for (const leaf of ["a", "b", "c"]) builder.job(leaf, "effect.once", {}).afterSuccess(leaf, ["root"]);
    const dag = builder.job("final", "effect.once", {}).afterSuccess("final", ["a", "b", "c"]).build();
    const first = await enqueueWorkflowRun(handle, dag);
    const again = await enqueueWorkflowRun(handle, dag);
    expect([again.id, again.created, first.created]).toEqual([first.id, false, true]);
    jobs += 5;
  }
  await handle.transaction(async (tx) => {
    await tx.execute(sql`insert into runledger_test.app_rows (enqueuer) values (${n})`);
    await enqueueJob(tx, { jobType: "effect.once" });
  });
  return jobs + 1;
}

describe("through PgBouncer in transaction mode", () => {
  it("workers, enqueuers, workflows and a schedule work through the pooler; LISTEN comes from listenUrl, or the worker polls and says so once", async () => {
    await createEffectTables(db);
    await db.execute(sql`create table runledger_test.app_rows (enqueuer int not null)`);
    await defineJob(db, "effect.once", { maxAttempts: 25 });
    const direct = url;
    workers.push(
      startWorkerProcess(bouncer!.url(database), "pooled-listen", 8, { ...WORKER_OPTIONS, listenUrl: direct }),
      startWorkerProcess(bouncer!.url(database), "pooled-poll", 8, WORKER_OPTIONS),
    );
    for (const worker of workers) await worker.ready;

    // A schedule firing every second, written and fired through the pooler.
    const admin = pooledDb("pooled-admin");
    const schedule = await upsertJobSchedule(admin, {
      name: "every-second",
      jobType: "effect.once",
      cronExpr: "* * * * * *",
    });
    const counts = await Promise.all([0, 1, 2].map((n) => enqueuer(pooledDb(`pooled-enqueuer-${n}`), n)));
    const enqueued = counts.reduce((a, b) => a + b, 0);

    // The LISTEN connection goes straight to the server; the pooled worker's queries do not.
    const [listening] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from pg_stat_activity
          where application_name = 'runledger-pooled-listen-listen' and query ilike 'listen%'`,
    );
    expect(listening!.n).toBeGreaterThan(0);

    await waitFor(
      async () => {
        const [row] = await queryRows<{ fired: number }>(
          db,
          sql`select count(*)::int as fired from runledger.job_queue where schedule_id = ${schedule.id}`,
        );
        return row!.fired >= 3;
      },
      { timeoutMs: 60_000, everyMs: 250, what: "the schedule to fire three times" },
    );
    await setJobScheduleActive(admin, "every-second", false);
    await waitFor(
      async () => {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where status <> 'SUCCEEDED'`,
        );
        return row!.n === 0;
      },
      { timeoutMs: 120_000, everyMs: 250, what: "every job to succeed" },
    );

    for (const worker of workers) worker.child.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exit));
    expect(
      exits.map((e) => e.code),
      exits.map((e) => e.stderr).join("\n"),
    ).toEqual([0, 0]);
    const [listen, poll] = exits.map(parseWorkerExit);
    expect(listen!.seen["polling.no_listen_connection"]).toBeUndefined();
    expect(poll!.seen["polling.no_listen_connection"]).toBe(1);
    expect({ ...listen!.seen, ...poll!.seen }).not.toHaveProperty("dead_lettered.job.handler_panic");

    const account = await accountExecutions(db);
    const [fired] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue where schedule_id = ${schedule.id}`,
    );
    const [apps] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger_test.app_rows`);
    console.info(JSON.stringify({ enqueued, scheduled: fired!.n, ...account, seen: [listen!.seen, poll!.seen] }));
    expect(apps!.n).toBe(3);
    expect(account).toMatchObject({
      jobs: enqueued + fired!.n,
      succeeded: enqueued + fired!.n,
      effects: enqueued + fired!.n,
      leased_jobs: 0,
      open_attempts: 0,
      live_runs: 0,
      succeeded_runs: (WORKFLOW_RUNS / 2) * 3,
      bad_attempt_stories: 0,
      unexplained_executions: 0,
      successes_run_twice: 0,
    });
    expect(account.extra_executions).toBeLessThanOrEqual(account.lease_expired_attempts + account.retryable_attempts);
    // Both workers took part.
    const busy = await queryRows<{ worker_id: string }>(
      db,
      sql`select distinct worker_id from runledger_test.executions order by worker_id`,
    );
    expect(busy.map((r) => r.worker_id)).toEqual(["pooled-listen", "pooled-poll"]);
  }, 240_000);

  // postgres.js pipelines a statement onto a busy connection when all are busy; PgBouncer 1.18
  // releases the server connection at the first statement's end and drops the second one's
  // replies, so its caller waited forever (the workers' parameterless flow check did this).
  it("a pooled handle sends one statement at a time per connection, and its transactions still hold one", async () => {
    const handle = createDb(bouncer!.url(database), { pooled: true, max: 2, applicationName: "pooled-pipeline" });
    handles.push(handle);
    const within = <T>(promise: Promise<T>) =>
      Promise.race([
        promise,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("a statement never returned")), 15_000)),
      ]);
    // A parameterless statement leaves its connection open to pipelining; one with a parameter
    // pipelined behind it (unprepared, so described first) is the one whose replies were lost.
    const plain = Array.from({ length: 24 }, (_, i) =>
      queryRows<{ n: number }>(handle, i % 2 === 0 ? sql`select 1 as n` : sql`select ${1}::int as n`),
    );
    // Transactions interleaved with them: each sees its own writes and its own backend throughout.
    const transactions = Array.from({ length: 6 }, (_, i) =>
      handle.transaction(async (tx) => {
        const [first] = await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
        await tx.execute(sql`create temporary table if not exists pipeline_check (i int) on commit drop`);
        await tx.execute(sql`insert into pipeline_check values (${i})`);
        const [last] = await queryRows<{ pid: number; n: number }>(
          tx,
          sql`select pg_backend_pid() as pid, count(*)::int as n from pipeline_check`,
        );
        return last!.pid === first!.pid && last!.n === 1;
      }),
    );
    const rows = await within(Promise.all(plain));
    expect(rows.flat()).toEqual(Array.from({ length: 24 }, () => ({ n: 1 })));
    expect(await within(Promise.all(transactions))).toEqual(Array.from({ length: 6 }, () => true));
  }, 60_000);

  it("a pooled handle refuses LISTEN without a listenUrl, with a code saying why", async () => {
    const handle = pooledDb("pooled-no-listen");
    expect(handle.$runledger.notifications).toBe(false);
    expect(handle.$runledger.prepare).toBe(false);
    await expect(handle.$runledger.listen("runledger_jobs", () => {})).rejects.toSatisfy(
      (e) => e instanceof RunledgerError && e.code === "db.listen_unavailable",
    );
    const withListen = createDb(bouncer!.url(database), { pooled: true, listenUrl: url, max: 1 });
    handles.push(withListen);
    expect(withListen.$runledger.notifications).toBe(true);
    const heard: string[] = [];
    const subscription = await withListen.$runledger.listen("runledger_test_channel", (payload) => heard.push(payload));
    await db.execute(sql`select pg_notify('runledger_test_channel', 'hello')`);
    await waitFor(() => heard.length === 1, { timeoutMs: 10_000, what: "the notification" });
    await subscription.unlisten();
    expect(heard).toEqual(["hello"]);
  });
});
