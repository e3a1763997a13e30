import { describe, expect, it } from "vitest";
import { JobCatalog, JobsConfig, Supervisor } from "../../src/runtime/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase();

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
        const polled = ["worker", "scheduler", "reaper"].every((name) => health.loops[name]?.lastSuccessAt);
        return health.ready && health.listenerConnected && polled ? health : undefined;
      },
      { timeoutMs: 30_000, what: "a ready supervisor" },
    );
    expect(Object.keys(ready.loops).sort()).toEqual(["reaper", "scheduler", "worker", "worker.heartbeat"]);
    expect(ready).toMatchObject({ status: "ok", draining: false, inFlight: 0, queued: 0 });
    for (const loop of Object.values(ready.loops)) expect(loop).toMatchObject({ alive: true, state: "running" });

    supervisor.requestShutdown();
    expect(supervisor.health()).toMatchObject({ status: "draining", ready: false, draining: true });
    await supervisor.shutdown(10_000);
    expect(supervisor.health()).toMatchObject({ status: "stopped", ready: false });
    expect(supervisor.health().loops.worker?.alive).toBe(false);
  }, 60_000);
});
