import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  enqueueJobs,
  type JobEnqueue,
  pauseJobType,
  queryRows,
  resumeJobType,
  setJobTypeLimits,
  setKeyLimit,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { finished, type ProcessResult, startTs } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

/*
 * Four worker processes (concurrency 25 each) race on one database. Limits must hold across all
 * of them: sampled from the database (LEASED jobs per key and type) and counted by the handlers
 * themselves (a counter row per key, its high-water mark kept by the increment).
 */

const { db, url } = await useTestDatabase();

const TENANT_LIMIT = 3;
const PER_KEY_LIMIT = 4;
const TYPE_LIMIT = 7;
const RATE = { limit: 5, intervalMs: 1000 };
const RATED_JOBS = 60;

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  exit: Promise<ProcessResult>;
}

function startWorker(id: string): Worker {
  const child = startTs("test/fixtures/flow-worker.ts", [url, id, "25", JSON.stringify({ workMs: 15 })]);
  const exit = finished(child);
  const ready = new Promise<void>((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("ready\n")) resolve();
    });
    exit.then((r) => reject(new Error(`worker ${id} exited early: ${r.stderr}`)), reject);
  });
  ready.catch(() => {});
  return { child, ready, exit };
}

const workers: Worker[] = [];
afterAll(() => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
});

beforeAll(async () => {
  await db.execute(sql`create schema if not exists runledger_test`);
  await db.execute(
    sql`create table runledger_test.flow_counters (counter text primary key, n int not null, max_n int not null)`,
  );
  await db.execute(
    sql`create table runledger_test.flow_executions (job_id uuid not null, attempt int not null, worker_id text not null)`,
  );
  await db.execute(sql`create table runledger_test.flow_effects (job_id uuid primary key)`);
  for (const type of ["flow.keyed", "flow.typed", "flow.rated", "flow.slow", "flow.plain"]) await defineJob(db, type);
  await setKeyLimit(db, { pattern: "tenant-*", maxConcurrency: TENANT_LIMIT });
  await setJobTypeLimits(db, { jobType: "flow.keyed", maxConcurrencyPerKey: PER_KEY_LIMIT });
  await setJobTypeLimits(db, { jobType: "flow.typed", maxConcurrency: TYPE_LIMIT });
  await setJobTypeLimits(db, { jobType: "flow.rated", rateLimit: RATE });
});

async function enqueue(jobs: JobEnqueue[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += 500) await enqueueJobs(db, jobs.slice(i, i + 500));
}

const keyed = (key: string, n: number): JobEnqueue[] =>
  Array.from({ length: n }, () => ({ jobType: "flow.keyed", concurrencyKey: key, payload: { key } }));
const many = (jobType: string, n: number): JobEnqueue[] => Array.from({ length: n }, () => ({ jobType }));

async function unfinished(jobType?: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    db,
    sql`select count(*)::int as n from runledger.job_queue where finished_at is null
      and (${jobType ?? null}::text is null or job_type = ${jobType ?? null})`,
  );
  return row!.n;
}

/** Highest LEASED counts seen per key and for the limited type while `done` is false. */
async function sampleWhile(done: () => Promise<boolean>): Promise<{ keys: Map<string, number>; typed: number }> {
  const keys = new Map<string, number>();
  let typed = 0;
  const deadline = Date.now() + 120_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the jobs to finish");
    const rows = await queryRows<{ key: string | null; job_type: string; n: number }>(
      db,
      sql`select concurrency_key as key, job_type, count(*)::int as n from runledger.job_queue
        where status = 'LEASED' group by 1, 2`,
    );
    for (const row of rows) {
      if (row.key !== null) keys.set(row.key, Math.max(keys.get(row.key) ?? 0, row.n));
      if (row.job_type === "flow.typed") typed = Math.max(typed, row.n);
    }
  }
  return { keys, typed };
}

describe("flow control across 4 worker processes", { timeout: 300_000 }, () => {
  it("keeps per-key, per-type and rate limits, pauses and resumes, and runs every job once", async () => {
    const tenants = Array.from({ length: 10 }, (_, i) => `tenant-${i}`);
    const solos = Array.from({ length: 5 }, (_, i) => `solo-${i}`);
    const jobs = [
      ...tenants.flatMap((key) => keyed(key, 40)),
      ...solos.flatMap((key) => keyed(key, 40)),
      ...many("flow.typed", 150),
      ...many("flow.rated", RATED_JOBS),
      ...many("flow.plain", 300),
    ].sort(() => Math.random() - 0.5);
    await enqueue(jobs);
    for (let i = 0; i < 4; i++) workers.push(startWorker(`flow-${i}`));
    await Promise.all(workers.map((w) => w.ready));

    const sampled = await sampleWhile(async () => (await unfinished()) === 0);

    // Database samples.
    for (const key of tenants) expect(sampled.keys.get(key) ?? 0).toBeLessThanOrEqual(TENANT_LIMIT);
    for (const key of solos) expect(sampled.keys.get(key) ?? 0).toBeLessThanOrEqual(PER_KEY_LIMIT);
    expect(sampled.typed).toBeLessThanOrEqual(TYPE_LIMIT);
    // Handler-side counters (exact high-water marks).
    const counters = new Map(
      (
        await queryRows<{ counter: string; max_n: number; n: number }>(
          db,
          sql`select * from runledger_test.flow_counters`,
        )
      ).map((r) => [r.counter, r]),
    );
    for (const key of tenants) expect(counters.get(`key:${key}`)!.max_n).toBeLessThanOrEqual(TENANT_LIMIT);
    for (const key of solos) expect(counters.get(`key:${key}`)!.max_n).toBeLessThanOrEqual(PER_KEY_LIMIT);
    expect(counters.get("type:flow.typed")!.max_n).toBeLessThanOrEqual(TYPE_LIMIT);
    // The limits were reached, so they were what held concurrency back (the test can fail).
    expect(Math.max(...tenants.map((key) => counters.get(`key:${key}`)!.max_n))).toBe(TENANT_LIMIT);
    expect(counters.get("type:flow.plain")!.max_n).toBeGreaterThan(TYPE_LIMIT);

    // Rate: in every window of one interval, at most `limit` starts; 60 jobs span >= 10 intervals.
    const starts = (
      await queryRows<{ us: string }>(
        db,
        sql`select (extract(epoch from leased_at) * 1000000)::bigint::text as us from runledger.job_queue
          where job_type = 'flow.rated' order by leased_at`,
      )
    ).map((r) => Number(r.us));
    expect(starts).toHaveLength(RATED_JOBS);
    let worst = 0;
    for (let i = 0; i < starts.length; i++) {
      let j = i;
      while (j < starts.length && starts[j]! < starts[i]! + RATE.intervalMs * 1000) j++;
      worst = Math.max(worst, j - i);
    }
    expect(worst).toBeLessThanOrEqual(RATE.limit);
    expect(worst).toBe(RATE.limit);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(10 * RATE.intervalMs * 1000);

    // Pause: running jobs finish, nothing new is claimed, other types keep flowing.
    await enqueue(many("flow.slow", 150));
    await waitFor(
      async () => {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where job_type = 'flow.slow' and status = 'LEASED'`,
        );
        return row!.n >= 10;
      },
      { timeoutMs: 60_000, what: "slow jobs running" },
    );
    await pauseJobType(db, { jobType: "flow.slow" });
    const [{ at: pausedBy } = { at: "" }] = await queryRows<{ at: string }>(
      db,
      sql`select clock_timestamp()::text as at`,
    );
    await enqueue(many("flow.plain", 200));
    await waitFor(async () => (await unfinished("flow.plain")) === 0, { timeoutMs: 120_000, what: "plain jobs" });
    await waitFor(
      async () => {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where job_type = 'flow.slow' and status = 'LEASED'`,
        );
        return row!.n === 0;
      },
      { timeoutMs: 60_000, what: "running slow jobs to finish" },
    );
    const [paused] = await queryRows<{ late: number; pending: number; attempts: number }>(
      db,
      sql`select count(*) filter (where leased_at >= ${pausedBy}::timestamptz)::int as late,
          count(*) filter (where status = 'PENDING')::int as pending,
          coalesce(max(attempt) filter (where status = 'PENDING'), 0)::int as attempts
        from runledger.job_queue where job_type = 'flow.slow'`,
    );
    expect(paused).toMatchObject({ late: 0, attempts: 0 });
    expect(paused!.pending).toBeGreaterThan(0);

    // Resume: the workers are notified and finish the rest.
    await resumeJobType(db, { jobType: "flow.slow" });
    await waitFor(async () => (await unfinished()) === 0, { timeoutMs: 120_000, what: "resumed jobs" });

    // Exactly once throughout.
    const [once] = await queryRows<{
      jobs: number;
      succeeded: number;
      executions: number;
      distinct: number;
      effects: number;
    }>(
      db,
      sql`select (select count(*)::int from runledger.job_queue) as jobs,
        (select count(*)::int from runledger.job_queue where status = 'SUCCEEDED' and attempt = 1) as succeeded,
        (select count(*)::int from runledger_test.flow_executions) as executions,
        (select count(distinct job_id)::int from runledger_test.flow_executions) as distinct,
        (select count(*)::int from runledger_test.flow_effects) as effects`,
    );
    expect(once!.jobs).toBe(jobs.length + 350);
    expect(once).toEqual({
      jobs: once!.jobs,
      succeeded: once!.jobs,
      executions: once!.jobs,
      distinct: once!.jobs,
      effects: once!.jobs,
    });

    for (const w of workers) w.child.kill("SIGTERM");
    const exits = await Promise.all(workers.map((w) => w.exit));
    for (const exit of exits) {
      expect(exit.code, exit.stderr).toBe(0);
      const report = JSON.parse(exit.stdout.trim().split("\n").at(-1)!) as { seen: Record<string, number> };
      expect(report.seen).toEqual({});
    }
  });
});
