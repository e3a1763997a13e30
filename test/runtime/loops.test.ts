// Each runtime loop is a ticker around `runOnce()`: one pass, awaited, saying what it did. These
// tests drive the passes by hand, with rows made by the testing factories and the scheduler's
// clock set, so nothing waits for a timer.

import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  JobRegistry,
  JobsConfig,
  Reaper,
  RetentionSweeper,
  RuntimeEvents,
  Scheduler,
  Worker,
} from "../../src/runtime/index.ts";
import { LeaseRenewal } from "../../src/runtime/lease-renewal.ts";
import {
  cancelJob,
  getJobById,
  insertJobDefinitionIfMissing,
  listJobAttempts,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import type { LeaseIdentity } from "../../src/store/worker.ts";
import { insertJob } from "../../src/testing/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows } from "../support/factories.ts";

const { db } = await useTestDatabase();
const config = JobsConfig.from({ workerId: "loops-worker", claimBatchSize: 10 });

async function job(id: string) {
  return (await getJobById(db, id, ALL_ORGANIZATIONS))!;
}

async function attempts(id: string) {
  return (await listJobAttempts(db, { jobId: id, scope: ALL_ORGANIZATIONS, limit: 10 })).items;
}

describe("runOnce", () => {
  it("reaper: retries a job whose lease expired, dead-letters one out of attempts and awaits its hook", async () => {
    const past = new Date(Date.now() - 60_000);
    const retried = await insertJob(db, {
      jobType: "loops.reap",
      status: "LEASED",
      leaseExpiresAt: past,
      maxAttempts: 3,
    });
    const last = await insertJob(db, { jobType: "loops.reap", status: "LEASED", leaseExpiresAt: past, maxAttempts: 1 });
    const live = await insertJob(db, { jobType: "loops.reap", status: "LEASED" });
    const hooked: string[] = [];
    const registry = new JobRegistry().register({
      jobType: "loops.reap",
      execute: async () => {},
      onDeadLetter: async (context) => {
        hooked.push(context.jobId);
      },
    });
    const events = new RuntimeEvents();
    const reaped: unknown[] = [];
    events.on("reaper:reaped", (event) => reaped.push(event));

    expect(await new Reaper({ db, registry, config, events }).runOnce()).toBe(2);
    expect(hooked).toEqual([last.id]); // the pass returned after the hook ran
    expect(reaped).toEqual([{ processed: 2, released: 0, retried: 1, deadLettered: 1, deferred: 0 }]);
    expect((await job(retried.id)).status).toBe("PENDING");
    expect((await attempts(retried.id)).map((a) => a.outcome)).toEqual(["LEASE_EXPIRED"]);
    expect((await job(last.id)).status).toBe("DEAD_LETTERED");
    expect((await job(live.id)).status).toBe("LEASED");
    // Nothing left to reap: the next pass does nothing.
    expect(await new Reaper({ db, registry, config }).runOnce()).toBe(0);
  });

  it("scheduler: fires a schedule's due slot at the clock it is given, once", async () => {
    await insertJobDefinitionIfMissing(db, { jobType: "loops.scheduled" });
    const schedule = await upsertJobSchedule(db, {
      name: "loops.hourly",
      jobType: "loops.scheduled",
      cronExpr: "0 0 * * * *",
      now: new Date("2031-03-01T00:00:00Z"),
    });
    const fired: unknown[] = [];
    const events = new RuntimeEvents();
    events.on("scheduler:fired", (event) => fired.push(event));
    const at = (now: Date) => new Scheduler({ db, config, events, now: () => now });

    expect(await at(new Date("2031-03-01T00:30:00Z")).runOnce()).toBe(0); // the first slot, 01:00, is not due
    expect(await at(new Date("2031-03-01T01:00:05Z")).runOnce()).toBe(1);
    expect(await at(new Date("2031-03-01T01:00:05Z")).runOnce()).toBe(0); // each slot fires once
    expect(fired).toEqual([
      expect.objectContaining({ scheduleId: schedule.id, scheduledFor: new Date("2031-03-01T01:00:00Z") }),
    ]);
  });

  it("worker: claims what is due and starts its handlers; drain records their results", async () => {
    const ran: string[] = [];
    const registry = new JobRegistry().register({
      jobType: "loops.work",
      execute: async (context) => {
        ran.push(context.jobId);
      },
    });
    const first = await insertJob(db, { jobType: "loops.work" });
    const second = await insertJob(db, { jobType: "loops.work" });
    const worker = new Worker({ db, registry, config });

    expect(await worker.runOnce()).toBe(2);
    expect(await worker.drain(5_000)).toEqual({ abandoned: [] });
    expect(ran.sort()).toEqual([first.id, second.id].sort());
    expect((await job(first.id)).status).toBe("SUCCEEDED");
    expect((await job(second.id)).status).toBe("SUCCEEDED");
    // A drained worker claims nothing more.
    await insertJob(db, { jobType: "loops.work" });
    expect(await worker.runOnce()).toBe(0);
  });

  it("lease renewal: renews every lease held in one statement and tells the holder which it lost", async () => {
    const kept = await insertJob(db, { jobType: "loops.lease", status: "LEASED", leaseSeconds: 10 });
    const lost = await insertJob(db, { jobType: "loops.lease", status: "LEASED", leaseSeconds: 10 });
    await cancelJob(db, { jobId: lost.id, scope: ALL_ORGANIZATIONS });
    const answers: [string[], string[]][] = [];
    const renewal = new LeaseRenewal<LeaseIdentity>({
      db,
      leaseSeconds: 600,
      events: new RuntimeEvents(),
      monitor: undefined,
      holder: {
        leases: () => [kept.lease!, lost.lease!],
        renewed: (renewed, held) => answers.push([renewed.map((l) => l.jobId), [...held.keys()]]),
      },
    });

    expect(await renewal.runOnce()).toEqual({ leases: 2, held: 1 });
    expect(answers).toEqual([[[kept.id, lost.id], [kept.id]]]);
    const renewed = await job(kept.id);
    expect(renewed.leaseExpiresAt!.getTime()).toBeGreaterThan(kept.leaseExpiresAt!.getTime() + 500_000);

    const idle = new LeaseRenewal<LeaseIdentity>({
      db,
      leaseSeconds: 60,
      events: new RuntimeEvents(),
      monitor: undefined,
      holder: { leases: () => [], renewed: () => answers.push([[], []]) },
    });
    expect(await idle.runOnce()).toEqual({ leases: 0, held: 0 });
    expect(answers).toHaveLength(1); // nothing sent, nothing to tell
  });

  it("retention: deletes what finished longer ago than its outcome's retention, at the clock it is given", async () => {
    const done = await insertJob(db, { jobType: "loops.retained", status: "SUCCEEDED" });
    const sweep = (now: Date) =>
      new RetentionSweeper({
        db,
        config: JobsConfig.from({ retentionSucceededSeconds: 3600, retentionWorkflowRunSeconds: 0 }),
        now: () => now,
      }).runOnce();
    const succeeded = await countRows(db, "job_queue", sql`status = 'SUCCEEDED' and workflow_step_id is null`);
    expect(succeeded).toBeGreaterThan(0);
    expect((await sweep(new Date(Date.now() + 1_800_000))).jobs).toBe(0);
    expect(await sweep(new Date(Date.now() + 7_200_000))).toMatchObject({ jobs: succeeded, workflowRuns: 0 });
    expect(await getJobById(db, done.id, ALL_ORGANIZATIONS)).toBeNull();
  });
});
