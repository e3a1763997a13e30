// Another organization's call on a run it cannot see is refused before it locks anything: it
// must not queue behind (and so hold up) the owner's completions.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowDagBuilder } from "../../src/core/index.ts";
import {
  appendWorkflowSteps,
  cancelWorkflowRun,
  createDb,
  enqueueWorkflowRun,
  getWorkflowRunById,
  retryWorkflowRun,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

const { db, url } = await useTestDatabase({ max: 4 });
const owner = createDb(url, { max: 1 });
afterAll(() => owner.$runledger.close());

const A = "00000000-0000-7000-8000-0000000000aa";
const B = "00000000-0000-7000-8000-0000000000bb";

beforeAll(async () => {
  await defineJob(db, "locks.step");
});

/** Hold the run's row and every step row locked, as an in-flight completion does, until released. */
async function holdRun(runId: string): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const holding = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const done = owner.transaction(async (tx) => {
    await tx.execute(sql`select id from runledger.workflow_runs where id = ${runId} for update`);
    await tx.execute(sql`select id from runledger.workflow_steps where workflow_run_id = ${runId} for update`);
    locked();
    await released;
  });
  await holding;
  return {
    release: async () => {
      release();
      await done;
    },
  };
}

/** What a call settled with before the lock holder let go (or that it was still waiting 10 s later). */
function settledWhileHeld(call: Promise<unknown>): Promise<string> {
  const waiting = new Promise<string>((resolve) => setTimeout(() => resolve("still waiting for the lock"), 10_000));
  return Promise.race([
    call.then(
      () => "succeeded",
      (error: { code?: string }) => error.code ?? String(error),
    ),
    waiting,
  ]);
}

describe("a run of another organization", () => {
  it("is not found by cancel, append or retry while its owner holds its locks", async () => {
    const dag = WorkflowDagBuilder.new("locks", {}).organizationId(A).job("work", "locks.step", {}).build();
    const { id: workflowRunId } = await enqueueWorkflowRun(db, dag);
    const held = await holdRun(workflowRunId);
    try {
      const calls = {
        cancel: cancelWorkflowRun(db, { workflowRunId, scope: { organizationId: B } }),
        append: appendWorkflowSteps(db, {
          workflowRunId,
          scope: { organizationId: B },
          appendWindowStepKey: "window",
          mutationKey: "m1",
          steps: [],
        }),
        retry: retryWorkflowRun(db, { workflowRunId, scope: { organizationId: B } }),
      };
      const outcomes = Object.fromEntries(
        await Promise.all(Object.entries(calls).map(async ([name, call]) => [name, await settledWhileHeld(call)])),
      );
      expect(outcomes).toEqual({
        cancel: "workflow.run_not_found",
        append: "workflow.run_not_found",
        retry: "workflow.run_not_found",
      });
    } finally {
      await held.release();
    }
    // The owner's run is untouched.
    expect((await getWorkflowRunById(db, workflowRunId, { organizationId: A }))?.status).toBe("RUNNING");
  });
});
