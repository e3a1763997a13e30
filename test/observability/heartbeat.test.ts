import { afterAll, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import { JobCatalog, JobsConfig, type LogFields, Supervisor } from "../../src/runtime/index.ts";
import { createDb, enqueueJob, getJobById } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";
import { Relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

// The worker reaches PostgreSQL through a relay of this test's own; the test enqueues and checks
// directly, so only the worker loses the database.
const { db, url } = await useTestDatabase();
const relay = Relay.to(url);
await relay.start();
const workerDb = createDb(relay.url(url), { max: 4, applicationName: "runledger-heartbeat-test" });
afterAll(async () => {
  await relay.stop();
  await workerDb.$runledger.close({ timeoutSeconds: 1 });
});

it("failing lease renewal backs off like the other loops, says so once, and renews the lease as soon as the database is back", async () => {
  const lines: string[] = [];
  const at = (level: string) => (_fields: LogFields, message: string) => lines.push(`${level} ${message}`);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const supervisor = Supervisor.builder(
    workerDb,
    // Heartbeats every 3 s (a third of the lease) while all is well.
    JobsConfig.from({ workerId: "heartbeat", leaseTtlSeconds: 10, pollIntervalMs: 50 }),
  )
    .withCatalog(new JobCatalog().job("heartbeat.hold", () => released))
    .disableReaper()
    .disableScheduler()
    .disableRetention()
    .withLogger({ info: at("info"), warn: at("warn"), error: at("error") })
    .withLoopBackoff({ initialMs: 100, maxMs: 400 })
    .build();
  await defineJob(db, "heartbeat.hold");
  const job = await enqueueJob(db, { jobType: "heartbeat.hold" });
  supervisor.start();
  try {
    await waitFor(() => supervisor.health().inFlight === 1, { timeoutMs: 20_000, what: "the job running" });

    await relay.stop();
    // Renewal retries after 100, 200, 400, 400 ms … rather than every 3 s: four failures come
    // within the first renewal's 3 s and about a second more.
    const backoffs: number[] = [];
    const failing = await waitFor(
      () => {
        const heartbeat = supervisor.health().loops["worker.heartbeat"]!;
        if (heartbeat.retryInMs !== null && heartbeat.retryInMs !== backoffs.at(-1)) backoffs.push(heartbeat.retryInMs);
        return heartbeat.consecutiveFailures >= 4 ? heartbeat : undefined;
      },
      { timeoutMs: 6_000, everyMs: 10, what: "four failed heartbeats" },
    );
    expect(failing).toMatchObject({ state: "failing", alive: true, lastError: { code: "db.connection_failed" } });
    expect(backoffs.slice(0, 3)).toEqual([100, 200, 400]);
    expect(supervisor.health()).toMatchObject({ status: "degraded", ready: false, inFlight: 1 });

    const backAt = Date.now();
    await relay.start();
    const renewed = await waitFor(
      () => {
        const heartbeat = supervisor.health().loops["worker.heartbeat"]!;
        return heartbeat.state === "running" ? heartbeat : undefined;
      },
      { timeoutMs: 5_000, what: "a renewed lease" },
    );
    expect(renewed.lastSuccessAt!.getTime()).toBeGreaterThanOrEqual(backAt);
    // The lease held: the job finishes in its first attempt, not aborted nor taken back.
    release();
    await waitFor(async () => (await getJobById(db, job.id, ALL_ORGANIZATIONS))?.status === "SUCCEEDED", {
      timeoutMs: 10_000,
      what: "the job succeeded",
    });
    expect((await getJobById(db, job.id, ALL_ORGANIZATIONS))?.attempt).toBe(1);
  } finally {
    release();
    await supervisor.shutdown(5_000);
  }
  const heartbeatLines = lines.filter((line) => line.includes("worker.heartbeat:"));
  expect(heartbeatLines).toEqual([
    "warn worker.heartbeat: database unreachable (db.connection_failed), retrying in 0.1 s",
    expect.stringMatching(/^info worker\.heartbeat: reconnected after \d+(\.\d)? s \(\d+ failed attempts\)$/),
  ]);
}, 60_000);
