// A retry policy is application code. When it throws or answers nonsense, the failed attempt is
// still recorded, with the default backoff, and the worker carries on.

import { expect, it } from "vitest";
import { ALL_ORGANIZATIONS, defaultRetryDelayMs, JobFailure } from "../../src/core/index.ts";
import { JobRegistry, JobsConfig, Worker } from "../../src/runtime/index.ts";
import { getJobById } from "../../src/store/index.ts";
import { insertJob } from "../../src/testing/index.ts";
import { useTestDatabase } from "../support/db.ts";

const { db } = await useTestDatabase();

const policies = {
  throws: () => {
    throw new Error("policy bug");
  },
  "returns NaN": () => Number.NaN,
  "returns a negative delay": () => -5,
};

for (const [name, retryPolicy] of Object.entries(policies)) {
  it(`a retry policy that ${name} gets the default backoff; the worker keeps working`, async () => {
    const jobType = `policy.${name.replaceAll(" ", "_")}`;
    const registry = new JobRegistry().register({
      jobType,
      execute: async () => {
        throw JobFailure.retryable("flaky", "try again");
      },
    });
    const failing = await insertJob(db, { jobType, maxAttempts: 3 });
    const worker = new Worker({ db, registry, config: JobsConfig.from({ workerId: `w-${jobType}` }), retryPolicy });

    const before = Date.now();
    expect(await worker.runOnce()).toBe(1);
    expect(await worker.drain(5_000)).toEqual({ abandoned: [] });

    const job = (await getJobById(db, failing.id, ALL_ORGANIZATIONS))!;
    expect(job.status).toBe("PENDING");
    expect(job.lastErrorCode).toBe("flaky");
    const delay = job.nextRunAt.getTime() - before;
    const expected = defaultRetryDelayMs(1, failing.id);
    expect(delay).toBeGreaterThan(expected - 1_000);
    expect(delay).toBeLessThan(expected + 5_000);
  });
}
