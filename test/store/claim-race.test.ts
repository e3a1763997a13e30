import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { claimJobs, createDb, enqueueJobs, queryRows, type RunledgerDb } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

const { db, url } = await useTestDatabase();
const claimers: RunledgerDb[] = Array.from({ length: 4 }, () => createDb(url, { max: 1 }));
afterAll(() => Promise.all(claimers.map((c) => c.$runledger.close())));

describe("concurrent claims", () => {
  it("four connections claiming from 5,000 jobs never share one and together take all", async () => {
    await defineJob(db, "race");
    for (let i = 0; i < 5; i++) {
      await enqueueJobs(
        db,
        Array.from({ length: 1000 }, (_, j) => ({ jobType: "race", payload: { n: i * 1000 + j }, priority: j % 7 })),
      );
    }
    const claimedBy = await Promise.all(
      claimers.map(async (claimer, index) => {
        const ids: string[] = [];
        for (;;) {
          const batch = await claimJobs(claimer, {
            workerId: `w${index}`,
            leaseSeconds: 60,
            limit: 37,
            jobTypes: ["race"],
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
        (select count(*)::int from runledger.job_queue where status = 'LEASED') as leased,
        (select count(*)::int from runledger.job_attempts) as attempts,
        (select count(*)::int from runledger.job_events where event_type = 'LEASED') as leased_events`,
    );
    expect(counts).toEqual({ leased: 5000, attempts: 5000, leased_events: 5000 });
  });
});
