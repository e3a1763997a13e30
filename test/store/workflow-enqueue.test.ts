import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  WorkflowStepEnqueueBuilder as Step,
  WorkflowDagBuilder,
  type WorkflowRunEnqueue,
  WorkflowRunEnqueueBuilder,
} from "../../src/core/index.ts";
import { enqueueWorkflowRun, JOBS_CHANNEL, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob, ledgerCounts, runSteps } from "../support/factories.ts";
import { waitFor } from "../support/wait.ts";

const { db } = await useTestDatabase();

beforeAll(async () => {
  await defineJob(db, "step", { maxAttempts: 1 });
  await defineJob(db, "other", { maxAttempts: 4, defaultPriority: 3, defaultTimeoutSeconds: 90 });
  await defineJob(db, "disabled.step", { isEnabled: false });
});

const ORG = "0190f0a0-0000-7000-8000-00000000000a";

/** Everything a run's enqueue wrote, without ids and clock values (compared as relations instead). */
type Row = Record<string, unknown>;

async function written(runId: string) {
  const [run] = await queryRows<Row>(
    db,
    sql`select workflow_type, organization_id, status, idempotency_key is null as unkeyed, metadata, finished_at,
      started_at = created_at and updated_at = created_at as stamped
    from runledger.workflow_runs where id = ${runId}`,
  );
  const steps = await queryRows<Row>(
    db,
    sql`select s.step_key, s.execution_kind, s.job_type, s.priority, s.max_attempts, s.timeout_seconds, s.stage,
      s.organization_id, s.payload, s.status, s.job_id is not null as has_job, s.released_at = s.created_at as released,
      s.started_at, s.finished_at, s.dependency_count_total, s.dependency_count_pending,
      s.dependency_count_unsatisfied, s.status_reason, s.last_error_code, s.last_error_message,
      s.updated_at = s.created_at as stamped
    from runledger.workflow_steps s where s.workflow_run_id = ${runId} order by s.id`,
  );
  const jobs = await queryRows<Row>(
    db,
    sql`select s.step_key, j.job_type, j.organization_id, j.payload, j.status, j.priority, j.run_number, j.attempt,
      j.max_attempts, j.timeout_seconds, j.stage, j.next_run_at = j.created_at as due, j.started_at, j.finished_at,
      j.idempotency_key, j.worker_id, j.lease_expires_at
    from runledger.job_queue j join runledger.workflow_steps s on s.job_id = j.id and j.workflow_step_id = s.id
    where s.workflow_run_id = ${runId} order by s.id`,
  );
  const events = await queryRows<Row>(
    db,
    sql`select s.step_key, e.run_number, e.attempt, e.event_type, e.stage, e.payload, e.occurred_at = s.created_at as at
    from runledger.job_events e join runledger.workflow_steps s on s.job_id = e.job_id
    where s.workflow_run_id = ${runId} order by e.id`,
  );
  const edges = await queryRows<Row>(
    db,
    sql`select p.step_key as prerequisite, d.step_key as dependent, e.release_mode
    from runledger.workflow_step_dependencies e
    join runledger.workflow_steps p on p.id = e.prerequisite_step_id and p.workflow_run_id = e.workflow_run_id
    join runledger.workflow_steps d on d.id = e.dependent_step_id and d.workflow_run_id = e.workflow_run_id
    where e.workflow_run_id = ${runId} order by p.step_key, d.step_key`,
  );
  return { run, steps, jobs, events, edges };
}

const DAGS: Record<string, () => WorkflowRunEnqueue> = {
  "JOB roots": () => fanOut(3),
  "EXTERNAL roots only": () =>
    WorkflowRunEnqueueBuilder.tryNew("gates", { why: "approval" })
      .step(Step.tryExternal("gate1", { a: 1 }))
      .step(Step.tryExternal("gate2", {}))
      .build(),
  "a mix, with settings and organizations": () =>
    WorkflowRunEnqueueBuilder.tryNew("mixed", { m: [1, 2] })
      .organizationId(ORG)
      .step(Step.tryExternal("gate", { g: true }))
      .step(Step.tryJob("a", "other", { x: 1 }).priority(7).maxAttempts(2).timeoutSeconds(30).stage("scheduled"))
      .step(Step.tryJob("b", "other", { y: "z" }))
      .step(Step.tryJob("c", "step", {}).dependsOnSuccess(["gate", "a"]))
      .step(Step.tryExternal("d", {}).dependsOnTerminal(["b"]))
      .step(Step.tryJob("e", "other", {}).dependsOnSuccess(["c"]).dependsOnTerminal(["d"]))
      .build(),
};

function fanOut(width: number) {
  const fans = Array.from({ length: width }, (_, k) => `fan${k}`);
  let dag = WorkflowDagBuilder.new("fanout", {}).job("root", "step", {});
  for (const fan of fans) dag = dag.job(fan, "step", {}).afterSuccess(fan, ["root"]);
  return dag.job("join", "step", {}).afterSuccess("join", fans).build();
}

describe("links without foreign keys", () => {
  it("deleting a run deletes its steps and edges and unlinks their jobs, as the cascades did", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(3));
    const [root] = await runSteps(db, run.id);
    expect(await countRows(db, "workflow_step_dependencies", sql`workflow_run_id = ${run.id}`)).toBe(6);
    await db.execute(sql`delete from runledger.workflow_runs where id = ${run.id}`);
    expect(await countRows(db, "workflow_steps", sql`workflow_run_id = ${run.id}`)).toBe(0);
    expect(await countRows(db, "workflow_step_dependencies", sql`workflow_run_id = ${run.id}`)).toBe(0);
    const [job] = await queryRows<{ workflow_step_id: string | null }>(
      db,
      sql`select workflow_step_id from runledger.job_queue where id = ${root!.jobId}`,
    );
    expect(job).toEqual({ workflow_step_id: null });
  });

  it("deleting a step deletes the edges at either end; deleting a job unlinks its step", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(2));
    const steps = new Map((await runSteps(db, run.id)).map((s) => [s.stepKey, s]));
    await db.execute(sql`delete from runledger.workflow_steps where id = ${steps.get("fan0")!.id}`);
    const edges = await queryRows<{ prerequisite_step_id: string; dependent_step_id: string }>(
      db,
      sql`select prerequisite_step_id, dependent_step_id from runledger.workflow_step_dependencies
        where workflow_run_id = ${run.id} order by dependent_step_id`,
    );
    expect(edges).toEqual([
      { prerequisite_step_id: steps.get("root")!.id, dependent_step_id: steps.get("fan1")!.id },
      { prerequisite_step_id: steps.get("fan1")!.id, dependent_step_id: steps.get("join")!.id },
    ]);
    await db.execute(sql`delete from runledger.job_queue where id = ${steps.get("root")!.jobId}`);
    const root = (await runSteps(db, run.id)).find((s) => s.stepKey === "root");
    expect(root).toMatchObject({ status: "ENQUEUED", jobId: null });
  });
});

describe("definitions used by steps", () => {
  it("cannot be deleted or renamed while steps use them, as the restricting foreign key did", async () => {
    await defineJob(db, "used.step");
    await defineJob(db, "unused.step");
    await enqueueWorkflowRun(db, WorkflowDagBuilder.new("uses", {}).job("a", "used.step", {}).build());
    // The job of the released root restricts too (job_queue keeps its foreign key): drop it first.
    await db.execute(sql`delete from runledger.job_queue where job_type = 'used.step'`);
    const sqlState = (error: unknown) =>
      (error as { cause?: { code?: string }; code?: string }).cause?.code ?? (error as { code?: string }).code;
    for (const statement of [
      sql`delete from runledger.job_definitions where job_type = 'used.step'`,
      sql`update runledger.job_definitions set job_type = 'renamed.step' where job_type = 'used.step'`,
    ]) {
      const error = await db.execute(statement).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(sqlState(error)).toBe("23503");
    }
    await db.execute(sql`update runledger.job_definitions set is_enabled = false where job_type = 'used.step'`);
    await db.execute(sql`delete from runledger.job_definitions where job_type = 'unused.step'`);
    expect(await countRows(db, "job_definitions", sql`job_type in ('used.step', 'unused.step')`)).toBe(1);
  });
});

describe("the one-statement enqueue (runs without an idempotency key)", () => {
  for (const [name, dag] of Object.entries(DAGS)) {
    it(`writes what the transactional path writes: ${name}`, async () => {
      const plain = await enqueueWorkflowRun(db, dag());
      const keyed = await enqueueWorkflowRun(db, { ...dag(), idempotencyKey: `equivalence:${name}` });
      const a = await written(plain.id);
      const b = await written(keyed.id);
      expect(a.run).toEqual({ ...b.run, unkeyed: true });
      expect({ ...a, run: null }).toEqual({ ...b, run: null });
      const roots = a.steps.filter((step) => step.dependency_count_total === 0);
      expect(a.steps.filter((step) => step.released)).toEqual(roots);
      expect(a.jobs.map((job) => job.step_key)).toEqual(
        roots.filter((step) => step.execution_kind === "JOB").map((step) => step.step_key),
      );
      expect(a.events.map((event) => [event.step_key, event.event_type])).toEqual(
        a.jobs.map((job) => [job.step_key, "ENQUEUED"]),
      );
      const { created, ...returned } = plain;
      expect(created).toBe(true);
      expect(returned).toMatchObject({ status: a.run!.status, idempotencyKey: null, finishedAt: null });
      expect(Object.keys(returned).sort()).toEqual(
        Object.keys(keyed)
          .filter((k) => k !== "created")
          .sort(),
      );
    });
  }

  it("refuses a missing or disabled job type, writing nothing, even beside gates and good steps", async () => {
    const before = await ledgerCounts(db);
    const edgesBefore = await countRows(db, "workflow_step_dependencies");
    const dag = WorkflowRunEnqueueBuilder.tryNew("bad", {})
      .step(Step.tryExternal("gate", {}))
      .step(Step.tryJob("a", "step", {}))
      .step(Step.tryJob("b", "disabled.step", {}).dependsOnSuccess(["a"]))
      .step(Step.tryJob("c", "nope", {}))
      .build();
    await expect(enqueueWorkflowRun(db, dag)).rejects.toMatchObject({
      code: "workflow.definition_not_found_or_disabled",
      details: { jobTypes: ["disabled.step", "nope"] },
    });
    expect(await ledgerCounts(db)).toEqual(before);
    expect(await countRows(db, "workflow_step_dependencies")).toBe(edgesBefore);
  });

  it("leaves nothing when its caller's transaction rolls back", async () => {
    const before = await ledgerCounts(db);
    await expect(
      db.transaction(async (tx) => {
        await enqueueWorkflowRun(tx, fanOut(2));
        throw new Error("application failed");
      }),
    ).rejects.toThrow("application failed");
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("wakes workers when it enqueues a root job, and not for a run of gates", async () => {
    const woken: string[] = [];
    const subscription = await db.$runledger.listen(JOBS_CHANNEL, () => woken.push("jobs"));
    try {
      await enqueueWorkflowRun(db, DAGS["EXTERNAL roots only"]!());
      await enqueueWorkflowRun(db, fanOut(1));
      await waitFor(async () => woken.length > 0, { timeoutMs: 5000, what: "the wake-up" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(woken).toEqual(["jobs"]);
    } finally {
      await subscription.unlisten();
    }
  });
});
