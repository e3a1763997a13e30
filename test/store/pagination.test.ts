import { describe, expect, it } from "vitest";
import {
  enqueueJobs,
  enqueueWorkflowRun,
  type JobCursor,
  listJobs,
  listWorkflowRuns,
  type WorkflowRunCursor,
} from "../../src/store/index.ts";
import { externalStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

/*
 * Rows written by one statement or transaction share `now()` to the microsecond, while a cursor's
 * `Date` holds milliseconds: paging through them must neither skip nor repeat a row.
 */

const { db } = await useTestDatabase();

async function pageThrough<C>(
  read: (after: C | undefined) => Promise<{ items: { id: string }[]; next: C | null }>,
): Promise<string[]> {
  const seen: string[] = [];
  let after: C | undefined;
  for (;;) {
    const page = await read(after);
    seen.push(...page.items.map((item) => item.id));
    if (page.next === null) return seen;
    after = page.next;
  }
}

describe("keyset pages over rows created at the same instant", () => {
  it("listJobs returns every job of one batch once", async () => {
    await defineJob(db, "paged.job");
    const batch = await enqueueJobs(
      db,
      Array.from({ length: 10 }, (_, i) => ({ jobType: "paged.job", payload: { i } })),
    );
    const seen = await pageThrough<JobCursor>((after) => listJobs(db, { jobTypeContains: "paged.", limit: 3, after }));
    expect(seen.sort()).toEqual(batch.map((job) => job.id).sort());
  });

  it("listWorkflowRuns returns every run of one transaction once", async () => {
    const ids = await db.transaction(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 7; i++) {
        const run = await enqueueWorkflowRun(tx, {
          workflowType: "paged.flow",
          organizationId: null,
          metadata: {},
          idempotencyKey: null,
          steps: [externalStep("gate")],
        });
        out.push(run.id);
      }
      return out;
    });
    const seen = await pageThrough<WorkflowRunCursor>((after) =>
      listWorkflowRuns(db, { workflowTypeContains: "paged.", limit: 2, after }),
    );
    expect(seen.sort()).toEqual(ids.sort());
  });
});
