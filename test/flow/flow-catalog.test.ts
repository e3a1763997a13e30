import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobCatalog, JobsConfig, type RegistrySource, Supervisor } from "../../src/runtime/index.ts";
import {
  enqueueJobs,
  getJobDefinition,
  pauseJobType,
  queryRows,
  setJobTypeLimits,
  updateJobDefinition,
  upsertJobDefinition,
} from "../../src/store/index.ts";
import { claimJobs } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { waitFor } from "../support/wait.ts";

// Flow limits declared in a catalog: validated at registration, written by sync, enforced
// across every worker that claims the type.

const { db } = await useTestDatabase();
const running: Supervisor[] = [];

beforeEach(async () => {
  await db.execute(sql`truncate runledger.job_queue, runledger.job_definitions, runledger.flow_slots,
    runledger.flow_rate_starts, runledger.flow_key_limits, runledger.job_event_log cascade`);
});

afterEach(async () => {
  for (const supervisor of running.splice(0)) await supervisor.shutdown(5000);
});

const limitsOf = async (jobType: string) => {
  const d = (await getJobDefinition(db, jobType))!;
  return { maxConcurrency: d.maxConcurrency, maxConcurrencyPerKey: d.maxConcurrencyPerKey, rateLimit: d.rateLimit };
};

describe("catalog flow limits: validation", () => {
  it.each([
    [{ maxConcurrency: 0 }, "maxConcurrency"],
    [{ maxConcurrency: 1.5 }, "maxConcurrency"],
    [{ maxConcurrency: 2 ** 31 }, "maxConcurrency"],
    [{ maxConcurrencyPerKey: -1 }, "maxConcurrencyPerKey"],
    [{ maxConcurrency: "3" }, "maxConcurrency"],
    [{ rateLimit: { limit: 0, intervalMs: 1000 } }, "rateLimit.limit"],
    [{ rateLimit: { limit: 5, intervalMs: 0 } }, "rateLimit.intervalMs"],
    [{ rateLimit: null }, "rateLimit.limit"],
  ])("refuses %j at registration (%s), leaving the catalog unchanged", (limits, field) => {
    const catalog = new JobCatalog().job("ok", async () => {});
    const result = catalog.tryJob("limited", async () => {}, limits as never);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatchObject({
      code: "job_definition.invalid_value",
      details: { jobType: "limited", field },
    });
    expect(catalog.jobTypes()).toEqual(["ok"]);
  });

  it("the store refuses invalid limits in a definition, writing nothing", async () => {
    await expect(upsertJobDefinition(db, { jobType: "x", maxConcurrency: 0 })).rejects.toMatchObject({
      code: "job_definition.invalid_value",
      details: { field: "maxConcurrency" },
    });
    await expect(
      upsertJobDefinition(db, { jobType: "x", rateLimit: { limit: 1, intervalMs: 1.5 } }),
    ).rejects.toMatchObject({ code: "job_definition.invalid_value", details: { field: "rateLimit.intervalMs" } });
    expect(await getJobDefinition(db, "x")).toBeNull();
  });
});

describe("catalog flow limits: sync", () => {
  it("sync writes the catalog's limits; a limit left out of the catalog is removed", async () => {
    const limited = new JobCatalog()
      .job("report.export", async () => {}, {
        maxConcurrency: 5,
        maxConcurrencyPerKey: 1,
        rateLimit: { limit: 10, intervalMs: 1000 },
      })
      .job("plain", async () => {});
    await limited.syncDefinitions(db);
    expect(await limitsOf("report.export")).toEqual({
      maxConcurrency: 5,
      maxConcurrencyPerKey: 1,
      rateLimit: { limit: 10, intervalMs: 1000 },
    });
    expect(await limitsOf("plain")).toEqual({ maxConcurrency: null, maxConcurrencyPerKey: null, rateLimit: null });

    // An operator pause survives; a limit set outside the catalog lasts until the catalog's next sync.
    await pauseJobType(db, { jobType: "report.export" });
    await setJobTypeLimits(db, { jobType: "report.export", maxConcurrency: 1 });
    const changed = new JobCatalog().job("report.export", async () => {}, { maxConcurrency: 3 });
    await changed.syncDefinitionsExact(db, ["report.export"]);
    const after = (await getJobDefinition(db, "report.export"))!;
    expect(after.pausedAt).toBeInstanceOf(Date);
    expect(await limitsOf("report.export")).toEqual({ maxConcurrency: 3, maxConcurrencyPerKey: null, rateLimit: null });

    await new JobCatalog().job("report.export", async () => {}).syncDefinitions(db);
    expect(await limitsOf("report.export")).toEqual({
      maxConcurrency: null,
      maxConcurrencyPerKey: null,
      rateLimit: null,
    });
  });

  it("a sync that changes nothing writes nothing", async () => {
    const catalog = new JobCatalog().job("t", async () => {}, { maxConcurrency: 2 });
    await catalog.syncDefinitions(db);
    const xmin = async () =>
      (
        await queryRows<{ x: string }>(
          db,
          sql`select xmin::text as x from runledger.job_definitions where job_type = 't'`,
        )
      )[0]!.x;
    const before = await xmin();
    await catalog.syncDefinitions(db);
    expect(await xmin()).toBe(before);
  });

  it("a store upsert or update without limits keeps them; null removes one", async () => {
    await upsertJobDefinition(db, { jobType: "t", maxConcurrency: 4, rateLimit: { limit: 2, intervalMs: 500 } });
    await upsertJobDefinition(db, { jobType: "t", maxAttempts: 9 });
    expect(await limitsOf("t")).toEqual({
      maxConcurrency: 4,
      maxConcurrencyPerKey: null,
      rateLimit: { limit: 2, intervalMs: 500 },
    });
    await updateJobDefinition(db, "t", { maxAttempts: 4 });
    await updateJobDefinition(db, "t", { maxConcurrencyPerKey: 2 });
    expect(await limitsOf("t")).toEqual({
      maxConcurrency: 4,
      maxConcurrencyPerKey: 2,
      rateLimit: { limit: 2, intervalMs: 500 },
    });
    await upsertJobDefinition(db, { jobType: "t", rateLimit: null, maxConcurrencyPerKey: null });
    expect(await limitsOf("t")).toEqual({ maxConcurrency: 4, maxConcurrencyPerKey: null, rateLimit: null });
  });

  it("a limit synced while jobs of the type run counts them", async () => {
    await new JobCatalog().job("t", async () => {}).syncDefinitions(db);
    await enqueueJobs(
      db,
      Array.from({ length: 5 }, () => ({ jobType: "t" })),
    );
    expect(await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 3 })).toHaveLength(3);
    await new JobCatalog().job("t", async () => {}, { maxConcurrency: 3 }).syncDefinitions(db);
    expect(await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 10 })).toEqual([]);
  });
});

describe("catalog flow limits: enforced by running supervisors", () => {
  /** A handler that records how many of its jobs run at once (overall and per key). */
  function recorder(holdMs: number) {
    let now = 0;
    const perKey = new Map<string, number>();
    const seen = { max: 0, maxPerKey: 0, done: 0 };
    const handler = async (payload: unknown) => {
      seen.max = Math.max(seen.max, ++now);
      const key = (payload as { key?: string }).key ?? "";
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      seen.maxPerKey = Math.max(seen.maxPerKey, perKey.get(key)!);
      await new Promise((resolve) => setTimeout(resolve, holdMs));
      perKey.set(key, perKey.get(key)! - 1);
      now--;
      seen.done++;
    };
    return { seen, handler };
  }

  function startWorkers(catalog: RegistrySource, n: number) {
    for (let i = 0; i < n; i++) {
      const supervisor = Supervisor.builder(
        db,
        JobsConfig.from({
          workerId: `flow-catalog-${i}`,
          pollIntervalMs: 50,
          maxGlobalConcurrency: 10,
          leaseTtlSeconds: 30,
        }),
      )
        .withCatalog(catalog)
        .build();
      supervisor.start();
      running.push(supervisor);
    }
  }

  it("maxConcurrency and maxConcurrencyPerKey hold across two supervisors", async () => {
    const { seen, handler } = recorder(60);
    const perKey = recorder(60);
    const catalog = new JobCatalog()
      .job("capped", handler, { maxConcurrency: 2 })
      .job("keyed", perKey.handler, { maxConcurrencyPerKey: 1 });
    await catalog.syncDefinitions(db);
    await enqueueJobs(db, [
      ...Array.from({ length: 12 }, () => ({ jobType: "capped", payload: {} })),
      ...Array.from({ length: 12 }, (_, i) => ({
        jobType: "keyed",
        payload: { key: `k${i % 3}` },
        concurrencyKey: `k${i % 3}`,
      })),
    ]);
    startWorkers(catalog, 2);
    await waitFor(() => seen.done === 12 && perKey.seen.done === 12, { timeoutMs: 30_000, what: "every job" });
    // Twenty free slots and twelve queued jobs each: only the limits held them back.
    expect(seen.max).toBe(2);
    expect(perKey.seen.maxPerKey).toBe(1);
    expect(perKey.seen.max).toBeGreaterThan(1);
  });

  it("a rate limit spaces starts across the interval", async () => {
    const { seen, handler } = recorder(0);
    const catalog = new JobCatalog().job("rated", handler, { rateLimit: { limit: 3, intervalMs: 400 } });
    await catalog.syncDefinitions(db);
    await enqueueJobs(
      db,
      Array.from({ length: 9 }, () => ({ jobType: "rated", payload: {} })),
    );
    startWorkers(catalog, 2);
    await waitFor(() => seen.done === 9, { timeoutMs: 30_000, what: "every job" });
    // Claim times on the database clock, which the window is kept on (handlers may start later).
    const starts = (
      await queryRows<{ ms: number }>(
        db,
        sql`select extract(epoch from started_at)::float8 * 1000 as ms from runledger.job_queue
          where job_type = 'rated' order by started_at`,
      )
    ).map((r) => r.ms);
    expect(starts).toHaveLength(9);
    // Any 4 consecutive starts span at least one interval.
    for (let i = 3; i < starts.length; i++) expect(starts[i]! - starts[i - 3]!).toBeGreaterThanOrEqual(399.99);
  });
});
