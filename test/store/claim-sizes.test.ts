import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { enqueueJobs, queryRows } from "../../src/store/index.ts";
import { claimRunnableJobs, claimSize, MAX_CLAIM } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

// One connection, so every claim below runs on the session whose prepared statements are read.
const { db } = await useTestDatabase({ max: 1 });

describe("claim sizes", () => {
  it("round a limit down by less than an eighth, and are their own size", () => {
    for (let limit = 1; limit <= MAX_CLAIM; limit++) {
      const size = claimSize(limit);
      expect(size).toBeLessThanOrEqual(limit);
      expect(size).toBeGreaterThan(limit - limit / 8);
      expect(claimSize(size)).toBe(size);
    }
    expect([1, 16, 17, 18, 100, 480, 500, 1000].map(claimSize)).toEqual([1, 16, 16, 18, 96, 480, 480, 960]);
    expect([0, -3].map(claimSize)).toEqual([0, 0]);
  });

  it("a claim of a claim size has a statement of its own, which settles on a generic plan", async () => {
    await defineJob(db, "sized");
    await enqueueJobs(
      db,
      Array.from({ length: 300 }, (_, n) => ({ jobType: "sized", payload: { n } })),
    );
    const claim = (limit: number) =>
      claimRunnableJobs(db, { workerId: "w", leaseSeconds: 60, limit, jobTypes: ["sized"], markRunning: true });
    let claimed = 0;
    for (let i = 0; i < 8; i++) claimed += (await claim(12)).length + (await claim(17)).length;
    expect(claimed).toBe(8 * (12 + 17));

    // The driver names prepared statements itself: tell the claims apart by their limit.
    const plans = await queryRows<{ limit: string; generic_plans: number; custom_plans: number }>(
      db,
      sql`select (regexp_match(statement, ${String.raw`limit (\S+)\s+for update skip locked`}))[1] as limit,
          generic_plans::int, custom_plans::int
        from pg_prepared_statements where statement like '%candidates as%' order by 1`,
    );
    // 17 is not a claim size (16 is): it takes the statement with the limit as a parameter.
    expect(plans.map((p) => p.limit)).toEqual(["$4", "12"]);
    const sized = plans.find((p) => p.limit === "12")!;
    expect(sized.generic_plans).toBeGreaterThan(0);
    expect(sized.generic_plans + sized.custom_plans).toBe(8);
  });
});
