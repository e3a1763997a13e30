import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  backfillJobSchedule,
  createDb,
  type EnqueuedJob,
  enqueueJob,
  enqueueJobs,
  getJobById,
  type JobEnqueue,
  queryRows,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { claimJobs, claimRunnableJobs, completeJobSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, ledgerCounts } from "../support/factories.ts";

const { db, url } = await useTestDatabase();
// 20 enqueuers at once need 20 connections; the claimers their own.
const racers = createDb(url, { max: 20 });
const claimers = Array.from({ length: 2 }, () => createDb(url, { max: 1 }));
afterAll(() => Promise.all([racers, ...claimers].map((d) => d.$runledger.close())));

const ORG = "0190f0a0-0000-7000-8000-00000000000a";
const OTHER_ORG = "0190f0a0-0000-7000-8000-00000000000b";

beforeAll(async () => {
  await defineJob(db, "search.reindex");
  await defineJob(db, "search.off", { isEnabled: false });
});

interface KeyedRow {
  id: string;
  status: string;
  attempt: number;
  job_key: string | null;
  payload: unknown;
}

/** Every job of `jobType` that holds or held `key` (by payload tag), oldest first. */
async function jobsFor(jobType: string, tag: string): Promise<KeyedRow[]> {
  return queryRows<KeyedRow>(
    db,
    sql`select id, status::text, attempt, job_key, payload from runledger.job_queue
      where job_type = ${jobType} and payload->>'tag' = ${tag} order by created_at, id`,
  );
}

const dbNow = async () =>
  new Date((await queryRows<{ ms: number }>(db, sql`select (extract(epoch from now()) * 1000)::float8 as ms`))[0]!.ms);

describe("job keys", () => {
  it("replace: a second enqueue with the key rewrites the pending job's payload and run-at", async () => {
    const later = new Date(Date.now() + 3_600_000);
    const first = await enqueueJob(db, {
      jobType: "search.reindex",
      payload: { tag: "r", v: 1 },
      jobKey: { key: "user:1" },
      nextRunAt: later,
    });
    const second = await enqueueJob(db, {
      jobType: "search.reindex",
      payload: { tag: "r", v: 2 },
      priority: 7,
      jobKey: { key: "user:1", mode: "replace" },
    });
    expect(first.created).toBe(true);
    expect(second).toEqual({ id: first.id, created: false });
    const job = await getJobById(db, first.id, ALL_ORGANIZATIONS);
    expect(job).toMatchObject({ payload: { tag: "r", v: 2 }, priority: 7, jobKey: "user:1", status: "PENDING" });
    expect(job!.nextRunAt.getTime()).toBeLessThan(later.getTime());
    expect(await jobsFor("search.reindex", "r")).toHaveLength(1);
  });

  it("preserve: the pending job is kept as it is", async () => {
    const first = await enqueueJob(db, {
      jobType: "search.reindex",
      payload: { tag: "p", v: 1 },
      jobKey: { key: "user:2", mode: "preserve" },
    });
    const second = await enqueueJob(db, {
      jobType: "search.reindex",
      payload: { tag: "p", v: 2 },
      jobKey: { key: "user:2", mode: "preserve" },
    });
    expect(second).toEqual({ id: first.id, created: false });
    expect((await getJobById(db, first.id, ALL_ORGANIZATIONS))!.payload).toEqual({ tag: "p", v: 1 });
  });

  it("debounce: each enqueue pushes run-at to now + delay, never past the maximum wait since the first", async () => {
    const debounce = { key: "user:3", mode: "debounce", delayMs: 60_000, maxWaitMs: 300_000 } as const;
    const start = await dbNow();
    const first = await enqueueJob(db, { jobType: "search.reindex", payload: { tag: "d", v: 1 }, jobKey: debounce });
    const runAt = async () => (await getJobById(db, first.id, ALL_ORGANIZATIONS))!.nextRunAt.getTime();
    expect(await runAt()).toBeGreaterThanOrEqual(start.getTime() + 60_000);
    expect(await runAt()).toBeLessThan(start.getTime() + 70_000);

    // The pending job was first enqueued 4 minutes ago (set, not waited for): the next push is
    // capped one minute from now, at created_at + 5 minutes.
    await db.execute(
      sql`update runledger.job_queue set created_at = now() - interval '4 minutes' where id = ${first.id}`,
    );
    const second = await enqueueJob(db, { jobType: "search.reindex", payload: { tag: "d", v: 2 }, jobKey: debounce });
    expect(second).toEqual({ id: first.id, created: false });
    const [row] = await queryRows<{ capped: boolean; payload: unknown }>(
      db,
      sql`select next_run_at = created_at + interval '5 minutes' as capped, payload from runledger.job_queue where id = ${first.id}`,
    );
    expect(row).toEqual({ capped: true, payload: { tag: "d", v: 2 } });

    // Past the maximum wait, run-at stays where the cap put it: due now.
    await db.execute(
      sql`update runledger.job_queue set created_at = now() - interval '10 minutes' where id = ${first.id}`,
    );
    await enqueueJob(db, { jobType: "search.reindex", payload: { tag: "d", v: 3 }, jobKey: debounce });
    expect(await runAt()).toBeLessThanOrEqual((await dbNow()).getTime());
  });

  it("hands the key from a running job, and from a finished one, to a new job", async () => {
    await defineJob(db, "search.handover");
    const key = { key: "user:4" };
    const first = await enqueueJob(db, { jobType: "search.handover", payload: { tag: "h", v: 1 }, jobKey: key });
    const [claimed] = await claimJobs(db, {
      workerId: "w",
      leaseSeconds: 60,
      limit: 10,
      jobTypes: ["search.handover"],
    });
    expect(claimed!.id).toBe(first.id);
    const second = await enqueueJob(db, { jobType: "search.handover", payload: { tag: "h", v: 2 }, jobKey: key });
    expect(second.created).toBe(true);
    expect((await getJobById(db, first.id, ALL_ORGANIZATIONS))!.jobKey).toBeNull();
    expect((await getJobById(db, second.id, ALL_ORGANIZATIONS))!.jobKey).toBe("user:4");
    // The running job finishes untouched by the hand-over.
    await completeJobSuccess(db, { lease: { jobId: first.id, runNumber: 1, attempt: 1, workerId: "w" } });
    expect((await getJobById(db, first.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");

    const [again] = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 10, jobTypes: ["search.handover"] });
    expect(again!.id).toBe(second.id);
    await completeJobSuccess(db, { lease: { jobId: second.id, runNumber: 1, attempt: 1, workerId: "w" } });
    const third = await enqueueJob(db, { jobType: "search.handover", payload: { tag: "h", v: 3 }, jobKey: key });
    expect(third.created).toBe(true);
    expect((await jobsFor("search.handover", "h")).map((j) => [j.status, j.job_key])).toEqual([
      ["SUCCEEDED", null],
      ["SUCCEEDED", null],
      ["PENDING", "user:4"],
    ]);
  });

  it("keeps keys apart per job type and organization", async () => {
    await defineJob(db, "search.other");
    const base = { payload: { tag: "scope" }, jobKey: { key: "shared" } };
    const results = [
      await enqueueJob(db, { jobType: "search.reindex", ...base }),
      await enqueueJob(db, { jobType: "search.other", ...base }),
      await enqueueJob(db, { jobType: "search.reindex", organizationId: ORG, ...base }),
      await enqueueJob(db, { jobType: "search.reindex", organizationId: OTHER_ORG, ...base }),
    ];
    expect(results.every((r) => r.created)).toBe(true);
    expect(new Set(results.map((r) => r.id)).size).toBe(4);
    const again = await enqueueJob(db, { jobType: "search.reindex", organizationId: ORG, ...base });
    expect(again).toEqual({ id: results[2]!.id, created: false });
  });

  it.each<[string, Partial<JobEnqueue>, string]>([
    ["a blank key", { jobKey: { key: " " } }, "jobKey.key"],
    ["an unknown mode", { jobKey: { key: "k", mode: "merge" as "replace" } }, "jobKey.mode"],
    ["a key with an idempotency key", { jobKey: { key: "k" }, idempotencyKey: "i" }, "jobKey"],
    ["a negative debounce", { jobKey: { key: "k", mode: "debounce", delayMs: -1 } }, "jobKey.delayMs"],
    [
      "debounce with nextRunAt",
      { jobKey: { key: "k", mode: "debounce", delayMs: 10 }, nextRunAt: new Date() },
      "nextRunAt",
    ],
  ])("refuses %s and writes nothing", async (_, override, field) => {
    const before = await ledgerCounts(db);
    await expect(enqueueJob(db, { jobType: "search.reindex", payload: {}, ...override })).rejects.toMatchObject({
      code: "job.invalid_enqueue_request",
      details: { field },
    });
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("refuses a disabled type, leaving its pending holder alone", async () => {
    await defineJob(db, "search.off", { isEnabled: true });
    const first = await enqueueJob(db, { jobType: "search.off", payload: { tag: "off", v: 1 }, jobKey: { key: "k" } });
    await defineJob(db, "search.off", { isEnabled: false });
    await expect(
      enqueueJob(db, { jobType: "search.off", payload: { tag: "off", v: 2 }, jobKey: { key: "k" } }),
    ).rejects.toMatchObject({ code: "job.definition_not_found_or_disabled" });
    expect((await getJobById(db, first.id, ALL_ORGANIZATIONS))!.payload).toEqual({ tag: "off", v: 1 });
  });

  it("enqueueJobs mixes keyed and plain items, in input order, with later items replacing earlier ones", async () => {
    const results = await enqueueJobs(db, [
      { jobType: "search.reindex", payload: { tag: "batch", n: 0 } },
      { jobType: "search.reindex", payload: { tag: "batch", n: 1 }, jobKey: { key: "batch" } },
      { jobType: "search.reindex", payload: { tag: "batch", n: 2 } },
      { jobType: "search.reindex", payload: { tag: "batch", n: 3 }, jobKey: { key: "batch" } },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, true, true, false]);
    expect(results[3]!.id).toBe(results[1]!.id);
    expect((await jobsFor("search.reindex", "batch")).map((j) => j.payload)).toEqual([
      { tag: "batch", n: 0 },
      { tag: "batch", n: 3 },
      { tag: "batch", n: 2 },
    ]);
  });

  it("leaves exactly one pending job for a key under 20 concurrent enqueues", async () => {
    for (const mode of ["replace", "preserve", "debounce"] as const) {
      const jobKey =
        mode === "debounce" ? { key: `race:${mode}`, mode, delayMs: 1_000 } : ({ key: `race:${mode}`, mode } as const);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          enqueueJob(racers, { jobType: "search.reindex", payload: { tag: `race:${mode}`, n }, jobKey }),
        ),
      );
      const jobs = await jobsFor("search.reindex", `race:${mode}`);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ status: "PENDING", job_key: `race:${mode}` });
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.id))).toEqual(new Set([jobs[0]!.id]));
    }
  });

  it("never lets two unstarted jobs hold a key while workers claim during 20 concurrent enqueues", async () => {
    await defineJob(db, "search.claimed");
    let stop = false;
    const claimed: string[] = [];
    const claiming = claimers.map(async (claimer, w) => {
      while (!stop) {
        const jobs = await claimJobs(claimer, {
          workerId: `claimer-${w}`,
          leaseSeconds: 60,
          limit: 5,
          jobTypes: ["search.claimed"],
        });
        claimed.push(...jobs.map((j) => j.id));
      }
    });
    const results: EnqueuedJob[] = [];
    try {
      for (let wave = 0; wave < 8; wave++) {
        results.push(
          ...(await Promise.all(
            Array.from({ length: 20 }, (_, n) =>
              enqueueJob(racers, {
                jobType: "search.claimed",
                payload: { tag: "race:claimed", wave, n },
                jobKey: { key: "race:claimed" },
              }),
            ),
          )),
        );
      }
    } finally {
      stop = true;
      await Promise.all(claiming);
    }
    const jobs = await jobsFor("search.claimed", "race:claimed");
    // Every job an enqueue created or updated exists; one job holds the key; the others were
    // claimed before they lost it.
    expect(new Set(results.map((r) => r.id))).toEqual(new Set(jobs.map((j) => j.id)));
    expect(jobs.filter((j) => j.job_key !== null)).toHaveLength(1);
    expect(jobs.filter((j) => j.status === "PENDING" && j.attempt === 0)).toHaveLength(
      jobs.find((j) => j.job_key !== null)!.status === "PENDING" ? 1 : 0,
    );
    for (const job of jobs.filter((j) => j.job_key === null)) expect(claimed).toContain(job.id);
    expect(results.filter((r) => r.created).length).toBe(jobs.length);
  });

  it("leaves the claim of keyed and scheduled jobs a HOT update", async () => {
    await defineJob(db, "hot.check");
    for (const key of ["a", "b", "c"]) {
      await enqueueJob(db, { jobType: "hot.check", payload: { key }, jobKey: { key } });
    }
    await upsertJobSchedule(db, { name: "hot.check", jobType: "hot.check", cronExpr: "0 0 * * * *", isActive: false });
    const from = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000);
    const to = new Date(from.getTime() + 3 * 3_600_000);
    await backfillJobSchedule(db, { name: "hot.check", from, to }, ALL_ORGANIZATIONS);
    // Every row the claim updated, and how many of those were HOT. The backend's counters also
    // hold earlier transactions' updates until it reports them (at most once a second, when idle),
    // so the claim's are the difference across it, inside one transaction.
    const counters = (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) =>
      queryRows<{ updated: number; hot: number }>(
        tx,
        sql`select pg_stat_get_xact_tuples_updated('runledger.job_queue'::regclass)::int as updated,
          pg_stat_get_xact_tuples_hot_updated('runledger.job_queue'::regclass)::int as hot`,
      ).then((rows) => rows[0]!);
    const counts = await db.transaction(async (tx) => {
      const before = await counters(tx);
      const claimed = await claimRunnableJobs(tx, {
        workerId: "w",
        leaseSeconds: 60,
        limit: 10,
        jobTypes: ["hot.check"],
        markRunning: true,
      });
      const after = await counters(tx);
      return {
        claimed: claimed.length,
        scheduled: claimed.filter((j) => j.schedule !== null).length,
        updated: after.updated - before.updated,
        hot: after.hot - before.hot,
      };
    });
    expect(counts).toEqual({ claimed: 6, scheduled: 3, updated: 6, hot: 6 });
  });
});
