import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { createDb, enqueueJobs, queryRows, type RunledgerDb } from "../../src/store/index.ts";
import { claimJobs, claimRunnableJobs } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

const { db, url } = await useTestDatabase();
const claimers: RunledgerDb[] = Array.from({ length: 4 }, () => createDb(url, { max: 1 }));
afterAll(() => Promise.all(claimers.map((c) => c.$runledger.close())));

describe("concurrent claims", () => {
  // 37 takes the claim with its limit as a parameter, 36 the one with a claim size written in.
  it.each([37, 36])(
    "four connections claiming %i at a time from 5,000 jobs never share one and together take all",
    async (limit) => {
      const jobType = `race${limit}`;
      await defineJob(db, jobType);
      for (let i = 0; i < 5; i++) {
        await enqueueJobs(
          db,
          Array.from({ length: 1000 }, (_, j) => ({ jobType, payload: { n: i * 1000 + j }, priority: j % 7 })),
        );
      }
      const claimedBy = await Promise.all(
        claimers.map(async (claimer, index) => {
          const ids: string[] = [];
          for (;;) {
            const batch = await claimJobs(claimer, {
              workerId: `w${index}`,
              leaseSeconds: 60,
              limit,
              jobTypes: [jobType],
            });
            if (batch.length === 0) return ids;
            ids.push(...batch.map((j) => j.id));
          }
        }),
      );
      const all = claimedBy.flat();
      expect(all).toHaveLength(5000);
      expect(new Set(all).size).toBe(5000);
      for (const ids of claimedBy) expect(ids.length).toBeGreaterThan(0);
      const [counts] = await queryRows<{ leased: number; attempts: number; leased_events: number }>(
        db,
        sql`select
        (select count(*)::int from runledger.job_queue where status = 'LEASED' and job_type = ${jobType}) as leased,
        (select count(*)::int from runledger.job_attempts a join runledger.job_queue j on j.id = a.job_id
          where j.job_type = ${jobType}) as attempts,
        (select count(*)::int from runledger.job_events e join runledger.job_queue j on j.id = e.job_id
          where e.event_type = 'LEASED' and j.job_type = ${jobType}) as leased_events`,
      );
      expect(counts).toEqual({ leased: 5000, attempts: 5000, leased_events: 5000 });
    },
  );

  it("gives a claim's attempts distinct version-7 ids", async () => {
    await defineJob(db, "numbered");
    await enqueueJobs(
      db,
      Array.from({ length: 600 }, (_, n) => ({ jobType: "numbered", payload: { n } })),
    );
    const [first, second] = await Promise.all(
      claimers
        .slice(0, 2)
        .map((claimer, i) =>
          claimJobs(claimer, { workerId: `n${i}`, leaseSeconds: 60, limit: 300, jobTypes: ["numbered"] }),
        ),
    );
    const ids = [...first!, ...second!].map((job) => job.id);
    const attempts = await queryRows<{ id: string }>(
      db,
      sql`select id::text from runledger.job_attempts where job_id = any(${sql.param(ids)}::uuid[])`,
    );
    expect(attempts).toHaveLength(600);
    expect(new Set(attempts.map((a) => a.id)).size).toBe(600);
    for (const { id } of attempts)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await expect(claimJobs(db, { workerId: "n", leaseSeconds: 60, limit: 10_001 })).rejects.toMatchObject({
      code: "job.invalid_pagination",
    });
  });

  it("gives workers runnable jobs in claim order: priority, then due time, then age", async () => {
    await defineJob(db, "runnable");
    const enqueued = await enqueueJobs(
      db,
      [3, 9, 1, 9, 5].map((priority, n) => ({ jobType: "runnable", payload: { n }, priority, maxAttempts: 4 })),
    );
    const jobs = await claimRunnableJobs(db, { workerId: "r", leaseSeconds: 60, limit: 10, jobTypes: ["runnable"] });
    expect(jobs.map((job) => (job.payload as { n: number }).n)).toEqual([1, 3, 4, 0, 2]);
    expect(jobs[0]).toEqual({
      id: enqueued[1]!.id,
      jobId: enqueued[1]!.id,
      jobType: "runnable",
      organizationId: null,
      payload: { n: 1 },
      runNumber: 1,
      attempt: 1,
      maxAttempts: 4,
      timeoutSeconds: expect.any(Number),
      checkpoint: null,
      workerId: "r",
      workflowStepId: null,
      workflowRunId: null,
      workflowStepKey: null,
      schedule: null,
      traceContext: null,
    });
  });
});
