import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { enqueueJobs, measureClaimScan } from "../../src/store/index.ts";
import { claimJobs, completeJobsSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

const { db } = await useTestDatabase();

describe("measureClaimScan", () => {
  it("counts the finished jobs' index entries a claim walks until VACUUM removes them", async () => {
    // No autovacuum may clean up behind the test's back, whatever the server's setting.
    await db.execute(sql`alter table runledger.job_queue set (autovacuum_enabled = false)`);
    await defineJob(db, "scan.job");
    await enqueueJobs(
      db,
      Array.from({ length: 10 }, (_, n) => ({ jobType: "scan.job", payload: { n } })),
    );
    const fresh = await measureClaimScan(db);
    expect(fresh).toMatchObject({ found: true, autovacuum: false });
    expect(fresh.pages).toBeLessThan(10);

    for (let round = 0; round < 6; round++) {
      await enqueueJobs(
        db,
        Array.from({ length: 1000 }, (_, n) => ({ jobType: "scan.job", payload: { round, n } })),
      );
    }
    for (;;) {
      const claimed = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1000 });
      if (claimed.length === 0) break;
      const results = await completeJobsSuccess(
        db,
        claimed.map((job) => ({
          lease: { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" },
        })),
      );
      expect(results.every((r) => r.ok)).toBe(true);
    }
    await enqueueJobs(db, [{ jobType: "scan.job", payload: { last: true } }]);

    // 6,010 finished jobs' entries (~150 to an index page) lie ahead of the one runnable job.
    const unvacuumed = await measureClaimScan(db);
    expect(unvacuumed.found).toBe(true);
    expect(unvacuumed.pages).toBeGreaterThanOrEqual(30);

    await db.execute(sql`vacuum runledger.job_queue`);
    const vacuumed = await measureClaimScan(db);
    expect(vacuumed.found).toBe(true);
    expect(vacuumed.pages).toBeLessThan(10);
    expect(vacuumed.vacuumedAt).toBeInstanceOf(Date);
  });

  it("changes no row: nothing is leased by it", async () => {
    await defineJob(db, "scan.untouched");
    await enqueueJobs(db, [{ jobType: "scan.untouched" }]);
    await measureClaimScan(db);
    const leased = await claimJobs(db, { workerId: "w2", leaseSeconds: 60, limit: 10, jobTypes: ["scan.untouched"] });
    expect(leased).toHaveLength(1);
    expect(leased[0]!.attempt).toBe(1);
  });
});
