import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import {
  claimJobs,
  completeJobSuccess,
  createDb,
  createEmbeddedDb,
  enqueueWorkflowRun,
  ensureSchemaCompatible,
  getJobById,
  getJobMetrics,
  getWorkflowRunById,
  inspectSchema,
  JOBS_CHANNEL,
  listJobEvents,
  listWorkflowSteps,
  migrate,
  type PGliteClient,
  queryRows,
  type RunledgerDb,
} from "../../src/store/index.ts";
import { waitFor } from "../support/wait.ts";

/*
 * One in-memory PGlite instance for the whole file: creating one costs ~4 s and ~0.8 GB, so
 * this is a smoke suite of the embedded driver, not a second copy of the PostgreSQL suite.
 */
let db: RunledgerDb;

const catalog = new JobCatalog()
  .job("smoke.plain", async () => {})
  .job("profiles.crawl", async (_payload, context) => {
    await context.progress({ progressDone: 1, progressTotal: 1 });
  })
  .job("profiles.classify", async () => {})
  .job("profiles.score", async () => {})
  .job("profiles.persist", async () => {});

beforeAll(async () => {
  db = await createEmbeddedDb();
}, 60_000);

afterAll(async () => {
  await db?.$runledger.close();
});

describe("PGlite driver", () => {
  it("is a pglite handle and applies the bundled migrations once", async () => {
    expect(db.$runledger.kind).toBe("pglite");
    expect((await inspectSchema(db)).state).toBe("uninitialized");
    expect(await migrate(db)).toMatchObject({ state: "current", pending: 0 });
    expect(await migrate(db)).toMatchObject({ state: "current", pending: 0 });
    expect((await ensureSchemaCompatible(db)).state).toBe("current");
    await catalog.syncDefinitions(db);
  });

  it("enqueues, claims and completes a job with typed rows", async () => {
    const { id } = await catalog.enqueue(db, "smoke.plain", { n: 1 });
    const [job] = await claimJobs(db, { workerId: "w1", leaseSeconds: 30, limit: 5, jobTypes: ["smoke.plain"] });
    expect(job).toMatchObject({ id, status: "LEASED", attempt: 1, runNumber: 1, payload: { n: 1 }, workerId: "w1" });
    expect(job!.nextRunAt).toBeInstanceOf(Date);
    expect(Number.isNaN(job!.leaseExpiresAt!.getTime())).toBe(false);
    expect(job!.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    await completeJobSuccess(db, {
      lease: { jobId: id, runNumber: 1, attempt: 1, workerId: "w1" },
      progressDone: 3,
      progressTotal: 4,
      checkpoint: { cursor: "c1" },
    });
    const done = (await getJobById(db, id))!;
    expect(done).toMatchObject({
      status: "SUCCEEDED",
      progressDone: 3,
      progressTotal: 4,
      checkpoint: { cursor: "c1" },
    });
    expect(done.finishedAt).toBeInstanceOf(Date);
    expect((await listJobEvents(db, { jobId: id, limit: 50 })).map((e) => e.eventType)).toEqual([
      "ENQUEUED",
      "LEASED",
      "SUCCEEDED",
    ]);
    const metrics = await getJobMetrics(db, {});
    expect(JSON.parse(JSON.stringify(metrics))).toEqual(metrics); // no bigint or other non-JSON values
  });

  it("writes atomically inside a transaction through the transaction handle", async () => {
    const id = await db.transaction(async (tx) => (await catalog.enqueue(tx, "smoke.plain", { n: 2 })).id);
    expect((await getJobById(db, id))!.status).toBe("PENDING");
    await expect(
      db.transaction(async (tx) => {
        await catalog.enqueue(tx, "smoke.plain", { n: 3 });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const rows = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue where payload @> '{"n":3}'`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it("runs a workflow to SUCCEEDED with a supervisor", async () => {
    const run = WorkflowDagBuilder.new("profiles.research", { source: "pglite" })
      .job("crawl", "profiles.crawl", { profile_id: "p_1" })
      .job("classify", "profiles.classify", { profile_id: "p_1" })
      .afterSuccess("classify", ["crawl"])
      .job("persist", "profiles.persist", { profile_id: "p_1" })
      .afterSuccess("persist", ["classify"])
      .build();
    const { id } = await enqueueWorkflowRun(db, run);
    const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 50, leaseTtlSeconds: 10 }))
      .withCatalog(catalog)
      .build();
    supervisor.start();
    try {
      await waitFor(async () => (await getWorkflowRunById(db, id))?.status === "SUCCEEDED", {
        what: "the workflow run",
      });
    } finally {
      await supervisor.shutdown(5000);
    }
    const steps = await listWorkflowSteps(db, id);
    expect(steps.map((s) => [s.stepKey, s.status])).toEqual([
      ["crawl", "SUCCEEDED"],
      ["classify", "SUCCEEDED"],
      ["persist", "SUCCEEDED"],
    ]);
    expect(steps.every((s) => s.finishedAt instanceof Date && s.startedAt instanceof Date)).toBe(true);
  });

  it("delivers NOTIFY through PGlite's listen and wakes an idle worker", async () => {
    const received: string[] = [];
    const subscription = await db.$runledger.listen("runledger_smoke", (payload) => received.push(payload));
    await db.execute(sql`select pg_notify('runledger_smoke', 'hello')`);
    await waitFor(() => received.length > 0, { what: "the notification" });
    await subscription.unlisten();
    expect(received).toEqual(["hello"]);

    // A poll interval far beyond the wait below: only the notification can wake the worker.
    const supervisor = Supervisor.builder(db, JobsConfig.from({ pollIntervalMs: 60_000, leaseTtlSeconds: 10 }))
      .withCatalog(catalog)
      .build();
    const woken: string[] = [];
    const wake = await db.$runledger.listen(JOBS_CHANNEL, () => woken.push("jobs"));
    supervisor.start();
    try {
      // Let the worker's first claim pass find nothing, so it is waiting when the job arrives.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { id } = await catalog.enqueue(db, "smoke.plain", { n: 4 });
      await waitFor(async () => (await getJobById(db, id))?.status === "SUCCEEDED", {
        timeoutMs: 5000,
        what: "the notified job",
      });
      expect(woken.length).toBeGreaterThan(0);
    } finally {
      await wake.unlisten();
      await supervisor.shutdown(5000);
    }
  });

  it("wraps a PGlite instance it does not own without closing it", async () => {
    const borrowed = await createDb((db as unknown as { $client: PGliteClient }).$client);
    expect(borrowed.$runledger.kind).toBe("pglite");
    await borrowed.$runledger.close();
    expect((await queryRows<{ one: number }>(db, sql`select 1 as one`))[0]!.one).toBe(1);
  });
});
