import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  RunledgerError,
  WorkflowDagBuilder,
  type WorkflowStepEnqueue,
} from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  cancelJob,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  createDb,
  enqueueJob,
  enqueueWorkflowRun,
  purgeFinished,
  purgeWorkflowRuns,
  queryRows,
  type RunledgerDb,
  requeueJob,
} from "../../src/store/index.ts";
import { claimJobs, completeJobSuccess } from "../../src/store/worker.ts";
import { externalStep, jobStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob } from "../support/factories.ts";
import { LATER, NO_ORPHANS, orphans, runJobs, runShapes } from "./retention-support.ts";

/*
 * The sweep racing the operations that could bring a finished row back to life or add to it. Each
 * racer has its own pool, so statements really interleave; sweepers run in a loop (several at once:
 * the sweep is leaderless) with a clock a year ahead, so every finished row is old enough the moment
 * it finishes. Whatever the interleaving, nothing live is deleted and nothing is deleted in part.
 */

const { db, url } = await useTestDatabase({ max: 4 });
const racers: RunledgerDb[] = Array.from({ length: 6 }, () => createDb(url, { max: 4 }));
afterAll(() => Promise.all(racers.map((r) => r.$runledger.close())));

beforeAll(async () => {
  await defineJob(db, "race.job");
  await defineJob(db, "race.dead", { maxAttempts: 1 });
  await defineJob(db, "race.step");
  await defineJob(db, "race.append");
});

const SWEEPERS = 3;
const racer = (i: number) => racers[i % racers.length]!;

/** Run `sweep` on SWEEPERS pools until `work` settles, then once more; sums what each pass returned. */
async function sweepingWhile(work: Promise<unknown>, sweep: (db: RunledgerDb) => Promise<number>): Promise<number> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  let total = 0;
  const loops = Array.from({ length: SWEEPERS }, async (_, k) => {
    while (!done) {
      const n = await sweep(racer(k)); // (not `total += await …`: that reads total before awaiting)
      total += n;
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  await Promise.all([settled, ...loops]);
  const last = await sweep(db);
  return total + last;
}

const sweepJobs = async (on: RunledgerDb) =>
  (await purgeFinished(on, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER, batchSize: 7 })).jobs;
const sweepRuns = async (on: RunledgerDb) =>
  (await purgeWorkflowRuns(on, { scope: ALL_ORGANIZATIONS, olderThan: 0, now: LATER, batchSize: 20 })).runs;

async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

const codeOf = (error: unknown) => (error instanceof RunledgerError ? error.code : String(error));

describe("retention races", () => {
  it("sweep vs requeue of dead letters: each job is requeued with its history, or deleted whole", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await enqueueJob(db, { jobType: "race.dead" })).id);
    expect(await runJobs(db, "race.dead", "dead")).toHaveLength(60);
    const requeues = Promise.all(
      ids.map((jobId, i) => settle(requeueJob(racer(i), { scope: ALL_ORGANIZATIONS, jobId }))),
    );
    const purged = await sweepingWhile(requeues, sweepJobs);
    const results = await requeues;

    let requeued = 0;
    for (const [i, result] of results.entries()) {
      const jobId = ids[i]!;
      if (result.ok) {
        requeued++;
        // Requeued: a live job that keeps its first run's attempt, events and nothing else lost.
        const [row] = await queryRows<{ status: string; run_number: number }>(
          db,
          sql`select status, run_number from runledger.job_queue where id = ${jobId}`,
        );
        expect(row).toEqual({ status: "PENDING", run_number: 2 });
        expect(await countRows(db, "job_attempt_log", sql`job_id = ${jobId} and run_number = 1`)).toBe(1);
        expect(await countRows(db, "job_event_log", sql`job_id = ${jobId} and event_type = 'DEAD_LETTERED'`)).toBe(1);
      } else {
        expect(codeOf(result.error)).toBe("job.not_found");
        expect(await countRows(db, "job_queue", sql`id = ${jobId}`)).toBe(0);
      }
    }
    expect(purged).toBe(60 - requeued);
    expect(await orphans(db)).toEqual(NO_ORPHANS);
    await runJobs(db, "race.dead", "dead");
    await sweepJobs(db);
  });

  it("sweep vs cancel: no pending job is deleted, every canceled one is, whole", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) ids.push((await enqueueJob(db, { jobType: "race.job" })).id);
    const toCancel = ids.filter((_, i) => i % 2 === 0);
    const cancels = Promise.all(
      toCancel.map((jobId, i) => settle(cancelJob(racer(i), { scope: ALL_ORGANIZATIONS, jobId }))),
    );
    const purged = await sweepingWhile(cancels, sweepJobs);
    // A sweep deleting a pending job would have made its cancel fail with job.not_found.
    for (const result of await cancels) expect(result.ok ? "ok" : codeOf(result.error)).toBe("ok");
    expect(purged).toBe(toCancel.length);
    const left = await queryRows<{ id: string; status: string }>(
      db,
      sql`select id, status::text from runledger.job_queue where job_type = 'race.job' order by id`,
    );
    expect(left).toEqual(ids.filter((_, i) => i % 2 === 1).map((id) => ({ id, status: "PENDING" })));
    expect(await orphans(db)).toEqual(NO_ORPHANS);
    await queryRows(
      db,
      sql`delete from runledger.job_event_log where job_id in (select id from runledger.job_queue where job_type = 'race.job')`,
    );
    await queryRows(db, sql`delete from runledger.job_queue where job_type = 'race.job'`);
  });

  it("sweep vs cancel of live runs: every cancel finds its run; runs go whole once canceled", async () => {
    const runs: string[] = [];
    for (let i = 0; i < 20; i++) runs.push((await enqueueWorkflowRun(db, fanOut(`cancel-${i}`))).id);
    const cancels = Promise.all(
      runs.map((workflowRunId, i) => settle(cancelWorkflowRun(racer(i), { scope: ALL_ORGANIZATIONS, workflowRunId }))),
    );
    const purged = await sweepingWhile(cancels, sweepRuns);
    for (const result of await cancels) {
      expect(result.ok ? (result.value as { status: string }).status : codeOf(result.error)).toBe("CANCELED");
    }
    expect(purged).toBe(20);
    const shapes = await runShapes(db);
    for (const id of runs) expect(shapes.has(id)).toBe(false);
    expect(await orphans(db)).toEqual(NO_ORPHANS);
  });

  it("sweep vs append: a live run is never touched, a closing run goes whole or is appended to first", async () => {
    const live: string[] = [];
    const closing: string[] = [];
    for (let i = 0; i < 20; i++) live.push((await enqueueWorkflowRun(db, gated(`live-${i}`))).id);
    for (let i = 0; i < 20; i++) closing.push((await enqueueWorkflowRun(db, gated(`closing-${i}`))).id);
    const append = (on: RunledgerDb, workflowRunId: string) =>
      settle(
        appendWorkflowSteps(on, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId,
          mutationKey: "more",
          appendWindowStepKey: "window",
          steps: [appended()],
        }),
      );
    const close = async (on: RunledgerDb, workflowRunId: string) => {
      for (const stepKey of ["gate", "window"]) {
        await completeExternalWorkflowStep(on, {
          scope: ALL_ORGANIZATIONS,
          workflowRunId,
          stepKey,
          terminalStatus: "SUCCEEDED",
        });
      }
    };
    const work = Promise.all([
      ...live.map((id, i) => append(racer(i), id)),
      ...closing.map(async (id, i) => {
        const [appendResult] = await Promise.all([append(racer(i + 1), id), close(racer(i), id)]);
        return appendResult;
      }),
    ]);
    await sweepingWhile(work, sweepRuns);
    const results = await work;
    const shapes = await runShapes(db);
    for (const [i, id] of live.entries()) {
      expect(results[i]!.ok).toBe(true);
      // Still live (its window is open): gate, window and the appended step, one mutation.
      expect(shapes.get(id)).toMatchObject({ steps: 3, edges: 1, mutations: 1 });
    }
    for (const [i, id] of closing.entries()) {
      const result = results[live.length + i]!;
      if (!result.ok) {
        expect(["workflow.append_window_not_open", "workflow.append_terminal_run", "workflow.run_not_found"]).toContain(
          codeOf(result.error),
        );
      }
      // Closed: the run is terminal once its appended job (if any) ran, and then goes whole.
      const shape = shapes.get(id);
      if (shape !== undefined) expect(shape).toMatchObject({ steps: 3, edges: 1, mutations: 1 });
    }
    await runJobs(db, "race.append");
    await sweepRuns(db);
    const after = await runShapes(db);
    for (const id of closing) expect(after.has(id)).toBe(false);
    for (const id of live) expect(after.get(id)).toEqual(shapes.get(id));
    expect(await orphans(db)).toEqual(NO_ORPHANS);
  });

  it("sweep vs runs finishing: no completion loses its job, and a run is only ever seen whole", async () => {
    const runs: string[] = [];
    for (let i = 0; i < 20; i++) runs.push((await enqueueWorkflowRun(db, fanOut(`finish-${i}`))).id);
    const failures: string[] = [];
    const partial: string[] = [];
    const worker = async (on: RunledgerDb, id: number) => {
      for (let idle = 0; idle < 50; ) {
        const jobs = await claimJobs(on, { workerId: `w${id}`, leaseSeconds: 60, limit: 5, jobTypes: ["race.step"] });
        if (jobs.length === 0) {
          idle++;
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        idle = 0;
        for (const job of jobs) {
          const lease = { jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: `w${id}` };
          const result = await settle(completeJobSuccess(on, { lease }));
          if (!result.ok) failures.push(codeOf(result.error));
        }
      }
    };
    const watch = async (on: RunledgerDb) => {
      // Each read is one snapshot: a run present must have all its steps and edges.
      for (const [id, shape] of await runShapes(on)) {
        if (runs.includes(id) && (shape.steps !== 5 || shape.edges !== 6)) partial.push(id);
      }
      return sweepRuns(on);
    };
    const purged = await sweepingWhile(Promise.all([worker(racer(3), 3), worker(racer(4), 4)]), watch);
    expect(failures).toEqual([]);
    expect(partial).toEqual([]);
    expect(purged).toBe(20);
    expect(await orphans(db)).toEqual(NO_ORPHANS);
  });
});

function fanOut(key: string) {
  const dag = WorkflowDagBuilder.new("race.flow", {}).idempotencyKey(key).job("root", "race.step", {});
  const leaves = ["a", "b", "c"];
  for (const leaf of leaves) dag.job(leaf, "race.step", {}).afterSuccess(leaf, ["root"]);
  return dag.job("join", "race.step", {}).afterSuccess("join", leaves).build();
}

function gated(key: string) {
  return {
    workflowType: "race.gated",
    organizationId: null,
    metadata: {},
    idempotencyKey: key,
    steps: [externalStep("gate"), externalStep("window")],
  };
}

function appended(): WorkflowStepEnqueue {
  return jobStep("after-gate", [["gate", "ON_SUCCESS"]], { jobType: "race.append" });
}
