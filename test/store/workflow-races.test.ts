import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  cancelWorkflowRun,
  createDb,
  enqueueWorkflowRun,
  getWorkflowRunById,
  queryRows,
  type RunledgerDb,
} from "../../src/store/index.ts";
import { claimJobs, completeJobSuccess, completeJobsSuccess } from "../../src/store/worker.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob, runSteps } from "../support/factories.ts";

const { db, url } = await useTestDatabase({ max: 4 });
const racers: RunledgerDb[] = Array.from({ length: 8 }, () => createDb(url, { max: 4 }));
afterAll(() => Promise.all(racers.map((r) => r.$runledger.close())));

beforeAll(async () => {
  await defineJob(db, "fan.root");
  await defineJob(db, "fan.leaf");
  await defineJob(db, "fan.final");
});

async function claimAll(jobType: string) {
  const jobs = await claimJobs(db, { workerId: "w", leaseSeconds: 60, limit: 1000, jobTypes: [jobType] });
  return jobs.map((job) => ({ jobId: job.id, runNumber: job.runNumber, attempt: job.attempt, workerId: "w" }));
}

function fanOut(width: number, key: string) {
  const builder = WorkflowDagBuilder.new("fan", {}).idempotencyKey(key).job("root", "fan.root", {});
  const leaves = Array.from({ length: width }, (_, i) => `leaf-${i}`);
  for (const leaf of leaves) builder.job(leaf, "fan.leaf", {}).afterSuccess(leaf, ["root"]);
  return builder.job("final", "fan.final", {}).afterSuccess("final", leaves).build();
}

describe("workflow races", () => {
  it("200 concurrent completions of a 1→200→1 fan-in release the final step exactly once", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(200, "fan-in"));
    const [root] = await claimAll("fan.root");
    await completeJobSuccess(db, { lease: root! });
    const leaves = await claimAll("fan.leaf");
    expect(leaves).toHaveLength(200);
    await Promise.all(leaves.map((lease, i) => completeJobSuccess(racers[i % racers.length]!, { lease })));

    const [final] = await queryRows<{ jobs: number; pending: number; status: string }>(
      db,
      sql`select (select count(*)::int from runledger.job_queue j where j.workflow_step_id = s.id) as jobs,
          s.dependency_count_pending as pending, s.status
        from runledger.workflow_steps s where s.workflow_run_id = ${run.id} and s.step_key = 'final'`,
    );
    expect(final).toEqual({ jobs: 1, pending: 0, status: "ENQUEUED" });
    const [finalLease] = await claimAll("fan.final");
    await completeJobSuccess(db, { lease: finalLease! });
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
  });

  it("cancel racing with 20 concurrent completions leaves every step terminal and the run CANCELED", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(20, "cancel-race"));
    const [root] = await claimAll("fan.root");
    await completeJobSuccess(db, { lease: root! });
    const leaves = await claimAll("fan.leaf");
    const outcomes = await Promise.allSettled([
      ...leaves.map((lease, i) => completeJobSuccess(racers[i % racers.length]!, { lease })),
      cancelWorkflowRun(racers[0]!, { scope: ALL_ORGANIZATIONS, workflowRunId: run.id, reason: "race" }),
    ]);
    // Completions either landed before the cancel or were fenced out by it.
    for (const outcome of outcomes.slice(0, -1)) {
      if (outcome.status === "rejected") expect(outcome.reason).toMatchObject({ code: "job.lease_owner_mismatch" });
    }
    expect(outcomes.at(-1)!.status).toBe("fulfilled");
    expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("CANCELED");
    const steps = await runSteps(db, run.id);
    expect(steps.every((s) => ["SUCCEEDED", "CANCELED"].includes(s.status))).toBe(true);
    expect(steps.find((s) => s.stepKey === "final")!.status).toBe("CANCELED");
    const [live] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue j join runledger.workflow_steps s on s.job_id = j.id
        where s.workflow_run_id = ${run.id} and j.status in ('PENDING', 'LEASED')`,
    );
    expect(live!.n).toBe(0);
  });

  it("batched completions from four workers, each batch mixing ten runs, settle every run once", async () => {
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => enqueueWorkflowRun(db, fanOut(20, `batch-${i}`))),
    );
    await completeJobsSuccess(
      db,
      (await claimAll("fan.root")).map((lease) => ({ lease })),
    );
    // 200 leaves claimed by four workers in interleaved batches: every batch holds steps of
    // every run, so the workers' transactions contend for the same run locks in the same order.
    const leaves = await claimAll("fan.leaf");
    expect(leaves).toHaveLength(200);
    const batches = Array.from({ length: 4 }, (_, w) => leaves.filter((_, i) => i % 4 === w));
    const deadlocks = async () =>
      (
        await queryRows<{ n: number }>(
          db,
          sql`select deadlocks::int as n from pg_stat_database where datname = current_database()`,
        )
      )[0]!.n;
    const deadlocksBefore = await deadlocks();
    const results = await Promise.all(
      batches.map((batch, w) =>
        completeJobsSuccess(
          racers[w]!,
          batch.map((lease) => ({ lease })),
        ),
      ),
    );
    expect(results.flat().every((result) => result.ok)).toBe(true);
    // A deadlock would be hidden by the one-by-one fallback; the server's counter is not.
    await db.execute(sql`select pg_stat_clear_snapshot()`);
    expect(await deadlocks()).toBe(deadlocksBefore);

    const finals = await queryRows<{ jobs: number; pending: number; status: string }>(
      db,
      sql`select (select count(*)::int from runledger.job_queue j where j.workflow_step_id = s.id) as jobs,
          s.dependency_count_pending as pending, s.status
        from runledger.workflow_steps s where s.step_key = 'final'
          and s.workflow_run_id = any(${sql.param(runs.map((r) => r.id))}::uuid[])`,
    );
    expect(finals).toEqual(Array.from({ length: 10 }, () => ({ jobs: 1, pending: 0, status: "ENQUEUED" })));
    await completeJobsSuccess(
      db,
      (await claimAll("fan.final")).map((lease) => ({ lease })),
    );
    for (const run of runs) expect((await getWorkflowRunById(db, run.id, ALL_ORGANIZATIONS))!.status).toBe("SUCCEEDED");
  });

  it("a batch with a lost lease settles the others and reports only that one", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(5, "batch-lost"));
    await completeJobsSuccess(
      db,
      (await claimAll("fan.root")).map((lease) => ({ lease })),
    );
    const leaves = await claimAll("fan.leaf");
    const stolen = { ...leaves[2]!, workerId: "someone-else" };
    const results = await completeJobsSuccess(
      db,
      leaves.map((lease, i) => ({ lease: i === 2 ? stolen : lease })),
    );
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ok",
      "job.lease_owner_mismatch",
      "ok",
      "ok",
    ]);
    const steps = await runSteps(db, run.id);
    expect(
      steps
        .filter((s) => s.status === "SUCCEEDED")
        .map((s) => s.stepKey)
        .sort(),
    ).toEqual(["leaf-0", "leaf-1", "leaf-3", "leaf-4", "root"]);
    expect(steps.find((s) => s.stepKey === "final")!).toMatchObject({ status: "BLOCKED", dependencyCountPending: 1 });
  });
});
