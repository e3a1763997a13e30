import { describe, expect, it } from "vitest";
import { healthHandler, JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { createDb } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { Relay } from "../support/relay.ts";
import { waitFor } from "../support/wait.ts";

const { db, url } = await useTestDatabase();

describe("Supervisor.health()", () => {
  it("reports starting, then every loop alive and succeeding, then draining and stopped", async () => {
    const supervisor = Supervisor.builder(db, JobsConfig.from({ workerId: "health", pollIntervalMs: 50 }))
      .withCatalog(new JobCatalog().job("health.noop", async () => {}))
      .withLogger(null)
      .build();
    expect(supervisor.health()).toMatchObject({ status: "starting", ready: false });
    supervisor.start();
    const ready = await waitFor(
      () => {
        const health = supervisor.health();
        // Lease renewal has nothing to renew (and no success to report) while no job runs.
        const polled = ["worker", "scheduler", "reaper", "retention", "retention.runs"].every(
          (name) => health.loops[name]?.lastSuccessAt,
        );
        return health.ready && health.listenerConnected && polled ? health : undefined;
      },
      { timeoutMs: 30_000, what: "a ready supervisor" },
    );
    expect(Object.keys(ready.loops).sort()).toEqual([
      "reaper",
      "retention",
      "retention.runs",
      "scheduler",
      "worker",
      "worker.heartbeat",
    ]);
    expect(ready).toMatchObject({ status: "ok", draining: false, inFlight: 0, queued: 0 });
    for (const loop of Object.values(ready.loops)) expect(loop).toMatchObject({ alive: true, state: "running" });

    supervisor.requestShutdown();
    expect(supervisor.health()).toMatchObject({ status: "draining", ready: false, draining: true });
    await supervisor.shutdown(10_000);
    expect(supervisor.health()).toMatchObject({ status: "stopped", ready: false });
    expect(supervisor.health().loops.worker?.alive).toBe(false);
    expect(supervisor.health().loops.retention?.alive).toBe(false);
  }, 60_000);

  it("has no retention entries where the sweep is off", () => {
    const supervisor = Supervisor.builder(db, JobsConfig.from({ workerId: "health-off", retentionIntervalMs: 0 }))
      .withCatalog(new JobCatalog())
      .build();
    expect(Object.keys(supervisor.health().loops).sort()).toEqual([
      "reaper",
      "scheduler",
      "worker",
      "worker.heartbeat",
    ]);
  });

  it("a failing retention sweep backs off, makes the process unready and recovers", async () => {
    // Only the sweep runs, through a relay this test can stop.
    const relay = Relay.to(url);
    await relay.start();
    const sweepDb = createDb(relay.url(url), { max: 2 });
    const lines: string[] = [];
    const line = (level: string) => (_fields: unknown, message: string) => lines.push(`${level} ${message}`);
    const supervisor = Supervisor.builder(
      sweepDb,
      JobsConfig.from({ workerId: "health-sweep", retentionIntervalMs: 1_000 }),
    )
      .disableWorker()
      .disableReaper()
      .disableScheduler()
      .withLogger({ info: line("info"), warn: line("warn"), error: line("error") })
      .withLoopBackoff({ initialMs: 100, maxMs: 200 })
      .build();
    const probe = healthHandler(supervisor);
    supervisor.start();
    try {
      const swept = await waitFor(
        () => {
          const health = supervisor.health();
          return health.loops.retention?.lastSuccessAt && health.loops["retention.runs"]?.lastSuccessAt
            ? health
            : undefined;
        },
        { timeoutMs: 20_000, what: "a first sweep" },
      );
      expect(Object.keys(swept.loops).sort()).toEqual(["retention", "retention.runs"]);
      expect(probe(new Request("http://probe/ready"))!.status).toBe(200);

      await relay.stop();
      const failing = await waitFor(
        () => {
          const retention = supervisor.health().loops.retention!;
          return retention.consecutiveFailures >= 2 ? retention : undefined;
        },
        { timeoutMs: 10_000, what: "the sweep failing" },
      );
      expect(failing).toMatchObject({ state: "failing", alive: true, lastError: { code: "db.connection_failed" } });
      const response = probe(new Request("http://probe/ready"))!;
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: "degraded", ready: false });

      await relay.start();
      await waitFor(() => supervisor.health().ready, { timeoutMs: 10_000, what: "ready again" });
      expect(probe(new Request("http://probe/ready"))!.status).toBe(200);
      expect(lines).toContain("warn retention: database unreachable (db.connection_failed), retrying in 0.1 s");
      expect(lines.some((l) => /^info retention: reconnected after/.test(l))).toBe(true);
    } finally {
      await supervisor.shutdown(5_000);
      await relay.stop();
      await sweepDb.$runledger.close({ timeoutSeconds: 1 });
    }
  }, 60_000);
});
