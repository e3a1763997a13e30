import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import { enqueueWorkflowRun, listWorkflowSteps, queryRows } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, defineJob } from "../support/factories.ts";

const { db } = await useTestDatabase();

beforeAll(async () => {
  await defineJob(db, "step", { maxAttempts: 1 });
});

function fanOut(width: number) {
  const fans = Array.from({ length: width }, (_, k) => `fan${k}`);
  let dag = WorkflowDagBuilder.new("fanout", {}).job("root", "step", {});
  for (const fan of fans) dag = dag.job(fan, "step", {}).afterSuccess(fan, ["root"]);
  return dag.job("join", "step", {}).afterSuccess("join", fans).build();
}

describe("links without foreign keys", () => {
  it("deleting a run deletes its steps and edges and unlinks their jobs, as the cascades did", async () => {
    const run = await enqueueWorkflowRun(db, fanOut(3));
    const [root] = await listWorkflowSteps(db, run.id);
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
    const steps = new Map((await listWorkflowSteps(db, run.id)).map((s) => [s.stepKey, s]));
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
    const root = (await listWorkflowSteps(db, run.id)).find((s) => s.stepKey === "root");
    expect(root).toMatchObject({ status: "ENQUEUED", jobId: null });
  });
});
