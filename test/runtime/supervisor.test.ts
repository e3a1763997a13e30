import { sql } from "drizzle-orm";
import * as v from "valibot";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, type JobContext, JobFailure, WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, type RegistrySource, Supervisor } from "../../src/runtime/index.ts";
import {
  createDb,
  enqueueJob,
  enqueueJobs,
  enqueueWorkflowRun,
  getJobById,
  queryRows,
  retryWorkflowRun,
  waitForWorkflowRun,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { eventTypes } from "../support/factories.ts";
import { finished, startTs } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const { db, url } = await useTestDatabase();
const running: Supervisor[] = [];

beforeAll(async () => {
  await db.execute(sql`create schema runledger_test`);
  await db.execute(sql`create table runledger_test.effects (job_id uuid not null, worker_id text not null)`);
  await db.execute(sql`create table runledger_test.started (job_id uuid not null, worker_id text not null)`);
});

// A test that leaves a supervisor running fails here rather than leaking into the next test.
afterEach(async () => {
  const leaked = running.splice(0).filter((s) => !s.isShutdownRequested);
  for (const supervisor of leaked) await supervisor.shutdown(1000);
  expect(leaked).toEqual([]);
});

function config(overrides: Partial<JobsConfig> = {}): JobsConfig {
  return JobsConfig.from({ pollIntervalMs: 50, leaseTtlSeconds: 10, reaperIntervalMs: 1_000, ...overrides });
}

function start(catalog: RegistrySource, overrides: Partial<JobsConfig> = {}): Supervisor {
  const supervisor = Supervisor.builder(db, config(overrides)).withCatalog(catalog).build();
  supervisor.start();
  running.push(supervisor);
  return supervisor;
}

async function stop(supervisor: Supervisor) {
  return supervisor.shutdown(5000);
}

async function status(id: string) {
  return (await getJobById(db, id, ALL_ORGANIZATIONS))!;
}

describe("Supervisor", () => {
  it("runs a handler with its parsed payload and records success", async () => {
    const seen: unknown[] = [];
    const catalog = new JobCatalog().job("greet", async (payload, context) => {
      seen.push({ payload, attempt: context.attempt, aborted: context.signal.aborted });
    });
    await catalog.syncDefinitions(db);
    const { id } = await catalog.enqueue(db, "greet", { name: "Ada" });
    const supervisor = start(catalog);
    await waitFor(async () => (await status(id)).status === "SUCCEEDED");
    await stop(supervisor);
    expect(seen).toEqual([{ payload: { name: "Ada" }, attempt: 1, aborted: false }]);
    expect(await eventTypes(db, id)).toEqual(["ENQUEUED", "LEASED", "SUCCEEDED"]);
  });

  it("retries a retryable failure after its delay, then succeeds", async () => {
    let calls = 0;
    const catalog = new JobCatalog().job("flaky", async () => {
      calls++;
      if (calls === 1) throw JobFailure.retryable("flaky.down", "try again", { retryAfterMs: 50 });
    });
    await catalog.syncDefinitions(db);
    const { id } = await catalog.enqueue(db, "flaky", {});
    const failed: string[] = [];
    const supervisor = start(catalog);
    supervisor.on("job:failed", (e) => failed.push(e.code));
    await waitFor(async () => (await status(id)).status === "SUCCEEDED");
    await stop(supervisor);
    expect(calls).toBe(2);
    expect(failed).toEqual(["flaky.down"]);
    expect(await eventTypes(db, id)).toEqual([
      "ENQUEUED",
      "LEASED",
      "FAILED",
      "RETRY_SCHEDULED",
      "LEASED",
      "SUCCEEDED",
    ]);
  });

  it("a retried handler resumes from the checkpoint its earlier attempt stored, also after a workflow retry", async () => {
    const seen: { runNumber: number; attempt: number; from: unknown; items: number[] }[] = [];
    let failAt: number | null = 5;
    const catalog = new JobCatalog().job(
      "resume.items",
      async (_payload, context) => {
        const from = context.previousCheckpoint;
        const entry = { runNumber: context.runNumber, attempt: context.attempt, from, items: [] as number[] };
        seen.push(entry);
        for (let item = (from as { next: number } | null)?.next ?? 0; item < 8; item++) {
          if (item === failAt) {
            failAt = failAt === 5 ? 6 : null;
            throw context.attempt === 1
              ? JobFailure.retryable("app.flaky", `item ${item}`, { retryAfterMs: 1 })
              : JobFailure.terminal("app.bad_item", `item ${item}`);
          }
          entry.items.push(item);
          await context.checkpoint({ next: item + 1 });
        }
      },
      { maxAttempts: 2 },
    );
    await catalog.syncDefinitions(db);
    const run = await enqueueWorkflowRun(
      db,
      WorkflowDagBuilder.new("resume.flow", {}).job("items", "resume.items", {}).build(),
    );
    const supervisor = start(catalog);
    // Attempt 1 stops at item 5 (retryable), attempt 2 resumes there and stops at item 6 (terminal).
    expect((await waitForWorkflowRun(db, run.id, { scope: ALL_ORGANIZATIONS, timeoutMs: 20_000 })).status).toBe(
      "COMPLETED_WITH_ERRORS",
    );
    // The step is fixed and retried: its job's next run resumes at item 6.
    await retryWorkflowRun(db, { workflowRunId: run.id, scope: ALL_ORGANIZATIONS });
    expect((await waitForWorkflowRun(db, run.id, { scope: ALL_ORGANIZATIONS, timeoutMs: 20_000 })).status).toBe(
      "SUCCEEDED",
    );
    await stop(supervisor);
    expect(seen).toEqual([
      { runNumber: 1, attempt: 1, from: null, items: [0, 1, 2, 3, 4] },
      { runNumber: 1, attempt: 2, from: { next: 5 }, items: [5] },
      { runNumber: 2, attempt: 1, from: { next: 6 }, items: [6, 7] },
    ]);
  });

  it("dead-letters a terminal failure and a thrown error (as PANICKED), calling the dead-letter hook", async () => {
    const hooked: string[] = [];
    const catalog = new JobCatalog()
      .job("doomed", {
        jobType: "doomed",
        execute: async () => {
          throw JobFailure.terminal("doomed.invalid", "cannot do this");
        },
        onDeadLetter: async (_context, _payload, info) => {
          hooked.push(`${info.failure.code}:${info.reason}`);
        },
      })
      .job("broken", async () => {
        throw new TypeError("undefined is not a function");
      });
    await catalog.syncDefinitions(db);
    const doomed = await catalog.enqueue(db, "doomed", {});
    const broken = await catalog.enqueue(db, "broken", {});
    const supervisor = start(catalog);
    await waitFor(
      async () =>
        (await status(doomed.id)).status === "DEAD_LETTERED" && (await status(broken.id)).status === "DEAD_LETTERED",
    );
    await waitFor(() => hooked.length === 1);
    await stop(supervisor);
    expect(await status(doomed.id)).toMatchObject({ statusReason: "TERMINAL", lastErrorCode: "doomed.invalid" });
    expect(await status(broken.id)).toMatchObject({ statusReason: "PANICKED", lastErrorCode: "job.handler_panic" });
    expect(hooked).toEqual(["doomed.invalid:FAILURE_KIND_NON_RETRYABLE"]);
  });

  it("aborts the signal on timeout and retries the job", async () => {
    let calls = 0;
    let sawAbort = false;
    const catalog = new JobCatalog({ timeoutSeconds: 1, maxAttempts: 2 }).job("slow", async (_p, context) => {
      calls++;
      if (calls === 1) {
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
        sawAbort = context.signal.aborted;
      }
    });
    await catalog.syncDefinitions(db);
    catalog.retryDelayOverride("slow", "job.timeout_exceeded", 50);
    const { id } = await catalog.enqueue(db, "slow", {});
    const supervisor = start(catalog);
    await waitFor(async () => (await status(id)).status === "SUCCEEDED", { timeoutMs: 8000 });
    await stop(supervisor);
    expect(sawAbort).toBe(true);
    const [attempt] = await queryRows<{ outcome: string; error_code: string }>(
      db,
      sql`select outcome, error_code from runledger.job_attempts where job_id = ${id} and attempt = 1`,
    );
    expect(attempt).toEqual({ outcome: "TIMEOUT", error_code: "job.timeout_exceeded" });
  });

  it("aborts a running handler's signal when its job is canceled", async () => {
    let aborted: unknown;
    const catalog = new JobCatalog().job("cancel.me", async (_p, context) => {
      await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
      aborted = context.signal.reason;
    });
    await catalog.syncDefinitions(db);
    const { id } = await catalog.enqueue(db, "cancel.me", {});
    const supervisor = start(catalog);
    await waitFor(async () => (await status(id)).status === "LEASED");
    const { cancelJob } = await import("../../src/store/index.ts");
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: id, reason: "no longer needed" });
    await waitFor(() => aborted !== undefined, { what: "the handler's signal to abort" });
    await stop(supervisor);
    expect(aborted).toBe("canceled");
    expect((await status(id)).status).toBe("CANCELED");
  });

  it("ignores a cancel notification for a job the database does not show canceled", async () => {
    const aborted = new Map<string, unknown>();
    const release = new Set<string>();
    const catalog = new JobCatalog().job("cancel.spoofed", async (payload, context) => {
      const { name } = payload as { name: string };
      await new Promise<void>((resolve) => {
        context.signal.addEventListener("abort", () => {
          aborted.set(name, context.signal.reason);
          resolve();
        });
        const poll = setInterval(() => {
          if (!release.has(name)) return;
          clearInterval(poll);
          resolve();
        }, 10);
      });
    });
    await catalog.syncDefinitions(db);
    const spoofed = await catalog.enqueue(db, "cancel.spoofed", { name: "spoofed" });
    const real = await catalog.enqueue(db, "cancel.spoofed", { name: "real" });
    const supervisor = start(catalog);
    await waitFor(
      async () => (await status(spoofed.id)).status === "LEASED" && (await status(real.id)).status === "LEASED",
    );
    // Anyone who can connect can send this; the worker must look before it aborts.
    await db.execute(sql`select pg_notify('runledger_cancel', ${spoofed.id})`);
    const { cancelJob } = await import("../../src/store/index.ts");
    await cancelJob(db, { scope: ALL_ORGANIZATIONS, jobId: real.id });
    // Checks run in the order announced: once the real one aborted, the spoofed one was looked at.
    await waitFor(() => aborted.has("real"), { what: "the canceled job's signal to abort" });
    expect(aborted.has("spoofed")).toBe(false);
    release.add("spoofed");
    await waitFor(async () => (await status(spoofed.id)).status === "SUCCEEDED");
    await stop(supervisor);
    expect(aborted.get("real")).toBe("canceled");
  });

  it("starts an idle worker's job on NOTIFY, not on its 10 s poll", async () => {
    const started: number[] = [];
    const catalog = new JobCatalog().job("ping", async () => {
      started.push(Date.now());
    });
    await catalog.syncDefinitions(db);
    const supervisor = start(catalog, { pollIntervalMs: 10_000 });
    // Let the worker finish its first (empty) poll and go to sleep.
    await waitFor(async () => {
      const [row] = await queryRows<{ n: number }>(
        db,
        sql`select count(*)::int as n from pg_stat_activity where query ilike 'listen%' and datname = current_database()`,
      );
      return row!.n > 0;
    });
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = Date.now();
      await catalog.enqueue(db, "ping", {});
      await waitFor(() => started.length === i + 1, { timeoutMs: 3000, everyMs: 2 });
      latencies.push(started[i]! - before);
    }
    await stop(supervisor);
    expect(Math.max(...latencies)).toBeLessThan(1000);
  });

  it("keeps waking on new work after its LISTEN connection is killed (reconnects and re-polls)", async () => {
    const started: string[] = [];
    const catalog = new JobCatalog().job("after.reconnect", async (_p, context) => {
      started.push(context.jobId);
    });
    await catalog.syncDefinitions(db);
    const supervisor = start(catalog, { pollIntervalMs: 10_000 });
    const listener = async () => {
      const [row] = await queryRows<{ pid: number }>(
        db,
        sql`select pid from pg_stat_activity where query ilike 'listen%' and datname = current_database() limit 1`,
      );
      return row?.pid;
    };
    const pid = await waitFor(listener, { what: "the LISTEN connection" });
    // Kill the listening connection and enqueue at once: the notification may be lost, the
    // re-poll on reconnect finds the job anyway.
    await db.execute(sql`select pg_terminate_backend(${pid})`);
    const { id } = await catalog.enqueue(db, "after.reconnect", {});
    const began = Date.now();
    await waitFor(() => started.includes(id), { timeoutMs: 8000, what: "the job to start after reconnecting" });
    await stop(supervisor);
    // Well inside the 10 s poll interval: the reconnect itself triggered a poll.
    expect(Date.now() - began).toBeLessThan(8000);
    const newPid = await listener();
    expect(newPid).not.toBe(pid);
  });

  it("shuts down gracefully with jobs in flight and loses nothing", async () => {
    const catalog = new JobCatalog().job("steady", async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
    });
    await catalog.syncDefinitions(db);
    const jobs = await enqueueJobs(
      db,
      Array.from({ length: 200 }, () => ({ jobType: "steady", payload: {} })),
    );
    const supervisor = start(catalog, { maxGlobalConcurrency: 20 });
    await waitFor(async () => {
      const [row] = await queryRows<{ n: number }>(
        db,
        sql`select count(*)::int as n from runledger.job_queue where job_type = 'steady' and status = 'SUCCEEDED'`,
      );
      return row!.n >= 20;
    });
    const report = await supervisor.shutdown(5000);
    expect(report.abandoned).toEqual([]);
    const [counts] = await queryRows<{ leased: number; succeeded: number; pending: number }>(
      db,
      sql`select count(*) filter (where status = 'LEASED')::int as leased,
        count(*) filter (where status = 'SUCCEEDED')::int as succeeded,
        count(*) filter (where status = 'PENDING')::int as pending
        from runledger.job_queue where job_type = 'steady'`,
    );
    expect(counts!.leased).toBe(0);
    expect(counts!.succeeded + counts!.pending).toBe(jobs.length);
  });

  it("rejects runUntilShutdown when a loop exits before shutdown was requested", async () => {
    const catalog = new JobCatalog().job("idle", async () => {});
    const supervisor = Supervisor.builder(db, config()).withCatalog(catalog).disableScheduler().build();
    // A reaper that returns on its own, as a crashed or misbehaving loop would.
    supervisor.reaper!.run = async () => "completed";
    running.push(supervisor);
    await expect(supervisor.runUntilShutdown(new Promise(() => {}), 2000)).rejects.toMatchObject({
      code: "runtime.task_exited_unexpectedly",
      details: { task: "reaper" },
    });
    expect(supervisor.isShutdownRequested).toBe(true);
  });

  it("join() waits until a shutdown handle stops the supervisor", async () => {
    const catalog = new JobCatalog().job("joined", async () => {});
    await catalog.syncDefinitions(db);
    const supervisor = Supervisor.builder(db, config()).withCatalog(catalog).build();
    running.push(supervisor);
    const handle = supervisor.shutdownHandle();
    let joinedYet = false;
    const joined = supervisor.join().finally(() => {
      joinedYet = true;
    });
    const { id } = await catalog.enqueue(db, "joined", {});
    await waitFor(async () => (await status(id)).status === "SUCCEEDED");
    expect(joinedYet).toBe(false);
    expect(handle.isShutdownRequested).toBe(false);
    handle.requestShutdown();
    expect(handle.signal.aborted).toBe(true);
    expect(await joined).toEqual({ abandoned: [] });
    expect(supervisor.isShutdownRequested).toBe(true);
  });

  it("join() rejects with a loop's failure once the other loops have stopped", async () => {
    const catalog = new JobCatalog().job("idle", async () => {});
    const supervisor = Supervisor.builder(db, config()).withCatalog(catalog).disableScheduler().build();
    running.push(supervisor);
    const worker = supervisor.worker!;
    const runWorker = worker.run.bind(worker);
    let workerStopped = false;
    worker.run = async (signal) => {
      const exit = await runWorker(signal);
      workerStopped = true;
      return exit;
    };
    supervisor.reaper!.run = async () => {
      throw new Error("reaper broke");
    };
    await expect(supervisor.join()).rejects.toMatchObject({ code: "runtime.task_failed", details: { task: "reaper" } });
    expect(supervisor.isShutdownRequested).toBe(true);
    expect(workerStopped).toBe(true);
  });

  it("shutdown() rejects with runtime.shutdown_timeout when a loop does not stop; join() still waits for it", async () => {
    const supervisor = Supervisor.builder(db, config()).disableWorker().disableReaper().build();
    running.push(supervisor);
    let release!: () => void;
    // A scheduler stuck (say, in a statement waiting for a lock) that does not see the shutdown.
    supervisor.scheduler!.run = () =>
      new Promise((resolve) => {
        release = () => resolve("shutdown");
      });
    supervisor.start();
    await expect(supervisor.shutdown(100)).rejects.toMatchObject({
      code: "runtime.shutdown_timeout",
      details: { timeoutMs: 100 },
    });
    let joinedYet = false;
    const joined = supervisor.join().finally(() => {
      joinedYet = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(joinedYet).toBe(false);
    release();
    expect(await joined).toEqual({ abandoned: [] });
  });

  it("materializes a due schedule and runs its job to SUCCEEDED, with the slot in the context, not the payload", async () => {
    const { upsertJobSchedule } = await import("../../src/store/index.ts");
    const received: unknown[] = [];
    const schedules: JobContext["schedule"][] = [];
    // A strict schema: anything added to the template would dead-letter the job.
    const catalog = new JobCatalog().job(
      "nightly.report",
      async (payload, context) => {
        received.push(payload);
        schedules.push(context.schedule);
      },
      { payload: v.strictObject({ kind: v.literal("nightly") }) },
    );
    await catalog.syncDefinitions(db);
    const due = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const schedule = await upsertJobSchedule(
      db,
      catalog.jobSchedule({
        name: "nightly",
        jobType: "nightly.report",
        cronExpr: "0 0 2 * * *",
        timezone: "Europe/Berlin",
        nextFireAt: due,
        payloadTemplate: { kind: "nightly" },
      }),
    );
    // The scheduler runs on the database's clock unless one is injected.
    const supervisor = Supervisor.builder(db, config()).withCatalog(catalog).build().start();
    const errors: unknown[] = [];
    supervisor.on("loop:error", (e) => errors.push(e.error));
    running.push(supervisor);
    await waitFor(() => received.length === 1 || errors.length > 0);
    await stop(supervisor);
    expect(errors).toEqual([]);
    expect(received).toEqual([{ kind: "nightly" }]);
    expect(schedules).toEqual([{ id: schedule.id, name: "nightly", scheduledFor: due }]);
    const [job] = await queryRows<{ status: string; stage: string }>(
      db,
      sql`select status, stage from runledger.job_queue where job_type = 'nightly.report'`,
    );
    expect(job).toEqual({ status: "SUCCEEDED", stage: "completed" });
  });

  it("works off a catch-up backlog larger than one pass without waiting for the next poll", async () => {
    const { upsertJobSchedule } = await import("../../src/store/index.ts");
    const catalog = new JobCatalog().job("backlog.tick", async () => {});
    await catalog.syncDefinitions(db);
    // 1,500 one-second slots within the window: two passes' worth at 1,000 fires a pass.
    const start = new Date(Math.floor(Date.now() / 1000) * 1000 - 1_500_000);
    await upsertJobSchedule(db, {
      name: "backlog",
      jobType: "backlog.tick",
      cronExpr: "* * * * * *",
      catchupWindowSeconds: 3600,
      nextFireAt: start,
    });
    const supervisor = Supervisor.builder(db, config({ schedulePollIntervalMs: 600_000 }))
      .withCatalog(catalog)
      .disableWorker()
      .build()
      .start();
    running.push(supervisor);
    let fired = 0;
    supervisor.on("scheduler:fired", () => fired++);
    await waitFor(() => fired >= 1500, { timeoutMs: 30_000, what: "the backlog to fire" });
    await stop(supervisor);
  });

  it("gives jobs not fired by a schedule a null context.schedule", async () => {
    const seen: JobContext["schedule"][] = [];
    const catalog = new JobCatalog().job("plain.job", async (_payload, context) => {
      seen.push(context.schedule);
    });
    await catalog.syncDefinitions(db);
    const supervisor = start(catalog);
    await enqueueJob(db, { jobType: "plain.job" });
    await waitFor(() => seen.length === 1);
    await stop(supervisor);
    expect(seen).toEqual([null]);
  });

  it("reports a supervisor built without handlers", () => {
    expect(() => Supervisor.builder(db, config()).build()).toThrow(
      expect.objectContaining({ code: "runtime.missing_registry" }),
    );
    const catalog = new JobCatalog();
    expect(() => Supervisor.builder(db, config()).withCatalog(catalog).withCatalog(catalog)).toThrow(
      expect.objectContaining({ code: "runtime.mixed_registry_sources" }),
    );
  });
});

describe("workers racing and dying", () => {
  it("two supervisors share 10,000 jobs and run each exactly once", async () => {
    const counts = new Map<string, number>();
    const catalog = new JobCatalog().job("share", async (_p, context) => {
      counts.set(context.jobId, (counts.get(context.jobId) ?? 0) + 1);
    });
    await catalog.syncDefinitions(db);
    for (let i = 0; i < 10; i++)
      await enqueueJobs(
        db,
        Array.from({ length: 1000 }, () => ({ jobType: "share", payload: {} })),
      );
    const second = createDb(url, { max: 4 });
    const a = start(catalog, { workerId: "a", maxGlobalConcurrency: 16 });
    const b = Supervisor.builder(second, config({ workerId: "b", maxGlobalConcurrency: 16 }))
      .withCatalog(catalog)
      .build()
      .start();
    running.push(b);
    await waitFor(
      async () => {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from runledger.job_queue where job_type = 'share' and status = 'SUCCEEDED'`,
        );
        return row!.n === 10_000;
      },
      { timeoutMs: 60_000, everyMs: 200 },
    );
    await stop(a);
    await stop(b);
    await second.$runledger.close();
    expect(counts.size).toBe(10_000);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const [workers] = await queryRows<{ a: number; b: number }>(
      db,
      sql`select count(*) filter (where a.worker_id = 'a')::int as a, count(*) filter (where a.worker_id = 'b')::int as b
        from runledger.job_attempts a join runledger.job_queue j on j.id = a.job_id where j.job_type = 'share'`,
    );
    expect(workers!.a + workers!.b).toBe(10_000);
    expect(workers!.a).toBeGreaterThan(0);
    expect(workers!.b).toBeGreaterThan(0);
  });

  it("recovers the job of a worker killed mid-job: reaped after the lease, completed exactly once", async () => {
    const catalog = new JobCatalog().job("effect.hang", async () => {}).job("effect.record", async () => {});
    await catalog.syncDefinitions(db);
    const { id } = await enqueueJob(db, { jobType: "effect.hang" });
    const child = startTs("test/fixtures/worker-process.ts", [url, "doomed", "4"]);
    const exit = finished(child);
    await waitFor(
      async () => (await queryRows(db, sql`select 1 from runledger_test.started where job_id = ${id}`)).length > 0,
      {
        timeoutMs: 20_000,
      },
    );
    child.kill("SIGKILL");
    expect((await exit).signal).toBe("SIGKILL");
    expect((await status(id)).status).toBe("LEASED");

    // A healthy worker whose handler for the type completes: it must wait for the lease to run out.
    let runs = 0;
    const healthy = new JobCatalog().job("effect.hang", async () => {
      runs++;
    });
    const supervisor = start(healthy, { reaperRetryDelayMs: 1000 });
    const recovered = await waitFor(async () => ((await status(id)).status === "SUCCEEDED" ? status(id) : undefined), {
      timeoutMs: 25_000,
      everyMs: 100,
    });
    await stop(supervisor);
    expect(runs).toBe(1);
    expect(recovered.attempt).toBe(2);
    const attempts = await queryRows<{ attempt: number; worker_id: string; outcome: string | null }>(
      db,
      sql`select attempt, worker_id, outcome from runledger.job_attempts where job_id = ${id} order by attempt`,
    );
    expect(attempts).toEqual([
      { attempt: 1, worker_id: "doomed", outcome: "LEASE_EXPIRED" },
      { attempt: 2, worker_id: expect.any(String), outcome: null },
    ]);
  }, 60_000);
});
