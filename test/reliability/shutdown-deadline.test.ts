// The two ways a running handler is let go of without its result: the shutdown deadline passes
// while it ignores its signal, and its lease is taken away (the heartbeat is refused). Both leave
// the recovery to the reaper and write nothing for the attempt they abandon.
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, RunledgerError, WORKER_FAILURE_CODES } from "../../src/core/index.ts";
import {
  JobCatalog,
  JobsConfig,
  type RegistrySource,
  type RuntimeEventMap,
  Supervisor,
} from "../../src/runtime/index.ts";
import { enqueueJob, getJobById, queryRows } from "../../src/store/index.ts";
import { reapExpiredLeases } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { badAttemptStories } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase();
const running: Supervisor[] = [];

beforeAll(async () => {
  await db.execute(sql`create schema runledger_test`);
  // One row per handler execution (a plain insert: duplicates must show), and why it stopped.
  await db.execute(
    sql`create table runledger_test.executions (job_id uuid not null, attempt int not null, worker_id text not null)`,
  );
  await db.execute(sql`create table runledger_test.aborts (job_id uuid not null, attempt int not null, reason text)`);
});

afterEach(async () => {
  for (const supervisor of running.splice(0)) if (!supervisor.isShutdownRequested) await supervisor.shutdown(1000);
});

/** A handler that records its execution and then, unless `finish` is set, waits for its signal and ignores it (deaf) or records why it aborted. */
function catalog(mode: { deaf: boolean; finish?: () => boolean }) {
  return new JobCatalog().job("deadline.work", async (_payload, context) => {
    await db.execute(
      sql`insert into runledger_test.executions (job_id, attempt, worker_id)
          values (${context.jobId}, ${context.attempt}, ${context.workerId})`,
    );
    if (mode.finish?.()) return;
    const reason = await new Promise<unknown>((resolve) =>
      context.signal.addEventListener("abort", () => resolve(context.signal.reason), { once: true }),
    );
    await db.execute(
      sql`insert into runledger_test.aborts (job_id, attempt, reason) values (${context.jobId}, ${context.attempt}, ${String(reason)})`,
    );
    // Deaf: go on working as if nothing happened (until the test ends).
    if (mode.deaf) await new Promise(() => {});
  });
}

function start(source: RegistrySource, workerId: string, overrides: Partial<JobsConfig> = {}): Supervisor {
  const config = JobsConfig.from({ workerId, pollIntervalMs: 50, leaseTtlSeconds: 10, ...overrides });
  const supervisor = Supervisor.builder(db, config).withCatalog(source).build();
  running.push(supervisor);
  return supervisor.start();
}

function record<K extends keyof RuntimeEventMap>(supervisor: Supervisor, name: K): RuntimeEventMap[K][] {
  const seen: RuntimeEventMap[K][] = [];
  supervisor.on(name, (event) => seen.push(event));
  return seen;
}

async function attempts(jobId: string) {
  return queryRows<{ attempt: number; worker_id: string; outcome: string | null; error_code: string | null }>(
    db,
    sql`select attempt, worker_id, outcome::text, error_code from runledger.job_attempts
        where job_id = ${jobId} order by attempt`,
  );
}

describe("shutdown deadline", () => {
  it("a handler deaf to its signal past the deadline is abandoned with runtime.shutdown_timeout, nothing written, and the reaper recovers it", async () => {
    let finishing = false;
    const work = catalog({ deaf: true, finish: () => finishing });
    await work.syncDefinitions(db);
    const first = start(work, "deadline-a", { reaperIntervalMs: 3_600_000 });
    const errors = record(first, "loop:error");
    const aborted = record(first, "job:aborted");
    const { id } = await enqueueJob(db, { jobType: "deadline.work" });
    await waitFor(async () => (await queryRows(db, sql`select 1 from runledger_test.executions`)).length === 1, {
      timeoutMs: 30_000,
      what: "the handler to start",
    });

    const report = await first.shutdown(300);
    expect(report.abandoned).toEqual([id]);
    expect(aborted.map((e) => [e.jobId, e.reason])).toEqual([[id, "shutdown"]]);
    const timeout = errors.map((e) => e.error).filter((e) => e instanceof RunledgerError);
    expect(timeout.map((e) => [e.code, e.details])).toEqual([
      ["runtime.shutdown_timeout", { timeoutMs: 300, abandoned: 1 }],
    ]);
    // The handler saw its signal at the deadline, ignored it, and nothing was written for it: the
    // attempt is open and the job leased to the stopped worker until the lease runs out.
    await waitFor(async () => (await queryRows(db, sql`select 1 from runledger_test.aborts`)).length === 1, {
      what: "the abort to reach the handler",
    });
    expect(await queryRows(db, sql`select reason from runledger_test.aborts`)).toEqual([{ reason: "shutdown" }]);
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))?.status).toBe("LEASED");
    expect(await attempts(id)).toEqual([{ attempt: 1, worker_id: "deadline-a", outcome: null, error_code: null }]);

    // Another worker's reaper takes the job back once the lease has run out (10 s) and its
    // worker runs it again, this time to the end.
    finishing = true;
    const second = start(work, "deadline-b", { reaperIntervalMs: 1_000, reaperRetryDelayMs: 1000 });
    await waitFor(async () => (await getJobById(db, id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
      timeoutMs: 60_000,
      what: "the reaper and the second worker to recover the job",
    });
    await second.shutdown(5000);
    expect(await attempts(id)).toEqual([
      { attempt: 1, worker_id: "deadline-a", outcome: "LEASE_EXPIRED", error_code: WORKER_FAILURE_CODES.leaseExpired },
      { attempt: 2, worker_id: "deadline-b", outcome: null, error_code: null },
    ]);
    // Two executions, the extra one matched to the attempt whose lease expired.
    expect(await queryRows(db, sql`select attempt, worker_id from runledger_test.executions order by attempt`)).toEqual(
      [
        { attempt: 1, worker_id: "deadline-a" },
        { attempt: 2, worker_id: "deadline-b" },
      ],
    );
    const [stories] = await queryRows<{ n: number }>(
      db,
      sql`select ${badAttemptStories(sql`runledger.job_queue`)} as n`,
    );
    expect(stories!.n).toBe(0);
  }, 120_000);
});

describe("lease loss", () => {
  it("a handler whose heartbeat is refused sees its signal abort with lease_lost, and its late result is not written", async () => {
    await db.execute(sql`truncate runledger_test.executions, runledger_test.aborts`);
    const work = catalog({ deaf: false });
    await work.syncDefinitions(db);
    // No reaper here: the test takes the lease away itself, as another process's reaper would.
    const supervisor = Supervisor.builder(
      db,
      JobsConfig.from({ workerId: "lease-a", pollIntervalMs: 50, leaseTtlSeconds: 10 }),
    )
      .withCatalog(work)
      .disableReaper()
      .disableScheduler()
      .build();
    running.push(supervisor);
    supervisor.start();
    const aborted = record(supervisor, "job:aborted");
    const { id } = await enqueueJob(db, { jobType: "deadline.work" });
    await waitFor(async () => (await queryRows(db, sql`select 1 from runledger_test.executions`)).length === 1, {
      timeoutMs: 30_000,
      what: "the handler to start",
    });

    // The lease runs out (made to, rather than waited for) and a reaper takes the job back with a
    // long retry delay; the worker's next heartbeat (every 3 s) is refused.
    await db.execute(
      sql`update runledger.job_queue set lease_expires_at = now() - interval '1 second' where id = ${id}`,
    );
    expect((await reapExpiredLeases(db, { limit: 10, retryDelayMs: 3_600_000 })).retried).toBe(1);
    await waitFor(async () => (await queryRows(db, sql`select 1 from runledger_test.aborts`)).length === 1, {
      timeoutMs: 30_000,
      what: "the refused heartbeat to abort the handler",
    });
    expect(await queryRows(db, sql`select attempt, reason from runledger_test.aborts`)).toEqual([
      { attempt: 1, reason: "lease_lost" },
    ]);
    expect(aborted.map((e) => [e.jobId, e.reason])).toEqual([[id, "lease_lost"]]);

    // The handler then returned normally; the worker had let go of it and wrote nothing.
    await supervisor.shutdown(5000);
    const job = await getJobById(db, id, ALL_ORGANIZATIONS);
    expect(job?.status).toBe("PENDING");
    expect(await attempts(id)).toEqual([
      { attempt: 1, worker_id: "lease-a", outcome: "LEASE_EXPIRED", error_code: WORKER_FAILURE_CODES.leaseExpired },
    ]);
    const events = await queryRows<{ event_type: string }>(
      db,
      sql`select event_type::text from runledger.job_events where job_id = ${id} and event_type = 'SUCCEEDED'`,
    );
    expect(events).toEqual([]);
  }, 120_000);
});
