import { describe, expect, it } from "vitest";
import { MAX_IDENTIFIER_BYTES, RunledgerError } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { createDb } from "../../src/store/index.ts";

describe("JobsConfig.fromEnv", () => {
  it("uses the spec's defaults when nothing is set", () => {
    const config = JobsConfig.fromEnv({});
    expect(config).toMatchObject({
      pollIntervalMs: 500,
      claimBatchSize: 16,
      leaseTtlSeconds: 60,
      maxGlobalConcurrency: 32,
      reaperIntervalMs: 15_000,
      schedulePollIntervalMs: 30_000,
      reaperRetryDelayMs: 30_000,
      retentionIntervalMs: 60_000,
    });
    expect(config.workerId).toMatch(/^worker-[0-9a-f-]{36}$/);
    expect(JobsConfig.fromEnv({ JOBS_WORKER_ID: "   " }).workerId).toMatch(/^worker-/);
  });

  it("reads every variable and clamps to the minimums", () => {
    const config = JobsConfig.fromEnv({
      JOBS_WORKER_ID: " api-1 ",
      JOBS_POLL_INTERVAL_MS: "0",
      JOBS_CLAIM_BATCH_SIZE: "64",
      JOBS_LEASE_TTL_SECONDS: "3",
      JOBS_MAX_GLOBAL_CONCURRENCY: "-5",
      JOBS_REAPER_INTERVAL_SECONDS: "0",
      JOBS_SCHEDULE_POLL_INTERVAL_SECONDS: "2",
      JOBS_REAPER_RETRY_DELAY_MS: "10",
      JOBS_CLAIM_FAIRNESS: "organization",
    });
    expect(config).toEqual({
      workerId: "api-1",
      pollIntervalMs: 1,
      claimBatchSize: 64,
      leaseTtlSeconds: 10,
      maxGlobalConcurrency: 1,
      reaperIntervalMs: 1000,
      schedulePollIntervalMs: 2000,
      reaperRetryDelayMs: 1000,
      claimFairness: "organization",
      retentionIntervalMs: 60_000,
      retentionSucceededSeconds: 604_800,
      retentionCanceledSeconds: 604_800,
      retentionDeadLetteredSeconds: 2_592_000,
      retentionWorkflowRunSeconds: 2_592_000,
      retentionBatchSize: 1_000,
    });
    expect(JobsConfig.variables).toHaveLength(15);
  });

  it("names every unparsable variable instead of silently defaulting", () => {
    const error = (() => {
      try {
        JobsConfig.fromEnv({ JOBS_POLL_INTERVAL_MS: "fast", JOBS_LEASE_TTL_SECONDS: "1.5" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({
      code: "config.invalid",
      details: {
        problems: ["JOBS_POLL_INTERVAL_MS must be a whole number", "JOBS_LEASE_TTL_SECONDS must be a whole number"],
      },
    });
    // The message a process prints on startup says which variable to fix, not only "invalid".
    expect((error as Error).message).toBe(
      "Runtime configuration is invalid. JOBS_POLL_INTERVAL_MS must be a whole number; JOBS_LEASE_TTL_SECONDS must be a whole number.",
    );
  });

  it("builds from code with the same clamps", () => {
    expect(JobsConfig.from({ leaseTtlSeconds: 1, workerId: "w" })).toMatchObject({
      leaseTtlSeconds: 10,
      workerId: "w",
    });
    expect(() => JobsConfig.from({ pollIntervalMs: Number.NaN })).toThrow(
      expect.objectContaining({ code: "config.invalid", message: expect.stringContaining("pollIntervalMs") }),
    );
  });

  it("lowers intervals and leases to what a timer can hold", () => {
    const env = {
      JOBS_REAPER_INTERVAL_SECONDS: "3000000",
      JOBS_SCHEDULE_POLL_INTERVAL_SECONDS: "3000000",
      JOBS_LEASE_TTL_SECONDS: "3000000",
    };
    expect(JobsConfig.fromEnv(env)).toMatchObject({
      reaperIntervalMs: 2_147_483_647,
      schedulePollIntervalMs: 2_147_483_647,
      leaseTtlSeconds: 2_147_483,
    });
    expect(JobsConfig.fromEnv({ JOBS_POLL_INTERVAL_MS: "2147483647" }).pollIntervalMs).toBe(2_147_483_647);
  });

  it("keeps one unit per kind of field: intervals and delays in ms, lifetimes in seconds", () => {
    const config = JobsConfig.from({ workerId: "w" });
    for (const key of Object.keys(config)) {
      if (key === "workerId" || key === "claimBatchSize" || key === "maxGlobalConcurrency") continue;
      if (key === "claimFairness" || key === "retentionBatchSize") continue;
      if (/Interval|Delay/.test(key)) expect(key, key).toMatch(/Ms$/);
      else expect(key, key).toMatch(/Seconds$/);
    }
  });

  it("maps the spec's variables in seconds onto the millisecond intervals", () => {
    const config = JobsConfig.fromEnv({
      JOBS_REAPER_INTERVAL_SECONDS: "7",
      JOBS_SCHEDULE_POLL_INTERVAL_SECONDS: "9",
      JOBS_RETENTION_INTERVAL_SECONDS: "120",
    });
    expect(config).toMatchObject({
      reaperIntervalMs: 7000,
      schedulePollIntervalMs: 9000,
      retentionIntervalMs: 120_000,
    });
    expect(JobsConfig.fromEnv({ JOBS_RETENTION_INTERVAL_SECONDS: "0" }).retentionIntervalMs).toBe(0);
    expect(JobsConfig.from({ retentionIntervalMs: 0 }).retentionIntervalMs).toBe(0);
    expect(JobsConfig.from({ retentionIntervalMs: 10, reaperIntervalMs: 10 })).toMatchObject({
      retentionIntervalMs: 1000,
      reaperIntervalMs: 1000,
    });
  });

  it("names the new field when code passes an interval under its old name in seconds", () => {
    expect(() => JobsConfig.from({ reaperIntervalSeconds: 5 } as never)).toThrow(
      expect.objectContaining({
        code: "config.invalid",
        message: expect.stringContaining("reaperIntervalSeconds is now reaperIntervalMs (milliseconds)"),
      }),
    );
  });

  it("takes claim fairness by name and refuses others", () => {
    expect(JobsConfig.fromEnv({}).claimFairness).toBeUndefined();
    expect(JobsConfig.from({ claimFairness: "concurrencyKey" }).claimFairness).toBe("concurrencyKey");
    expect(() => JobsConfig.fromEnv({ JOBS_CLAIM_FAIRNESS: "tenant" })).toThrow(
      expect.objectContaining({ code: "config.invalid", message: expect.stringContaining("JOBS_CLAIM_FAIRNESS") }),
    );
    expect(() => JobsConfig.from({ claimFairness: "tenant" as never })).toThrow(
      expect.objectContaining({ code: "config.invalid" }),
    );
  });

  it("caps the claim batch at the most one claim may lease", () => {
    expect(JobsConfig.fromEnv({ JOBS_CLAIM_BATCH_SIZE: "50000" }).claimBatchSize).toBe(10_000);
    expect(JobsConfig.from({ claimBatchSize: 50_000 }).claimBatchSize).toBe(10_000);
    expect(JobsConfig.from({ claimBatchSize: 500 }).claimBatchSize).toBe(500);
  });
});

describe("worker id", () => {
  const long = "w".repeat(MAX_IDENTIFIER_BYTES + 1);

  it("refuses JOBS_WORKER_ID over 512 bytes or with a NUL, naming the variable", () => {
    for (const bad of [long, "worker\u0000one", "worker\ud800"]) {
      const error = expectConfigError(() => JobsConfig.fromEnv({ JOBS_WORKER_ID: bad }));
      expect(error.message).toContain("JOBS_WORKER_ID must");
    }
    expect(JobsConfig.fromEnv({ JOBS_WORKER_ID: "w".repeat(MAX_IDENTIFIER_BYTES) }).workerId).toHaveLength(512);
  });

  it("refuses the same in code, and in a config object the Supervisor is built with", async () => {
    expect(expectConfigError(() => JobsConfig.from({ workerId: long })).message).toContain("workerId must");
    const db = createDb("postgres://127.0.0.1:1/never-connected");
    try {
      const config = { ...JobsConfig.from(), workerId: long };
      expectConfigError(() => Supervisor.builder(db, config).withCatalog(new JobCatalog()).build());
      expectConfigError(() =>
        Supervisor.builder(db, { ...config, workerId: " " })
          .withCatalog(new JobCatalog())
          .build(),
      );
    } finally {
      await db.$runledger.close();
    }
  });
});

function expectConfigError(build: () => unknown): RunledgerError {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(RunledgerError);
    expect((error as RunledgerError).code).toBe("config.invalid");
    return error as RunledgerError;
  }
  throw new Error("expected config.invalid");
}
