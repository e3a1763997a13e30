import { inspect } from "node:util";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, MAX_ERROR_MESSAGE_BYTES, RunledgerError } from "../../src/core/index.ts";
import {
  completeExternalWorkflowStep,
  enqueueJob,
  enqueueWorkflowRun,
  getJobDefinition,
  queryRows,
} from "../../src/store/index.ts";
import { claimJobs, completeJobFailure } from "../../src/store/worker.ts";
import { externalStep, jobStep } from "../core/workflow-fixtures.ts";
import { useTestDatabase } from "../support/db.ts";
import { defineJob } from "../support/factories.ts";

/*
 * Limits that are not refusals (error messages are cut, not refused) and what a refused write
 * keeps of the driver's error. The refusals themselves are the hostile-input corpus.
 */

const { db } = await useTestDatabase();

beforeAll(async () => {
  await defineJob(db, "limits.step");
  await defineJob(db, "limits.plain");
});

const MARKER = /… \[truncated (\d+) bytes\]$/;

describe("error messages are cut to MAX_ERROR_MESSAGE_BYTES, not copied whole", () => {
  it("a 20 MB failure message is stored cut, with a marker, on the job, attempt, events, dead letter and step", async () => {
    const run = await enqueueWorkflowRun(db, {
      workflowType: "limits.flow",
      organizationId: null,
      metadata: {},
      idempotencyKey: null,
      steps: [jobStep("only", [], { jobType: "limits.step", payload: {} })],
    });
    const [job] = await claimJobs(db, { workerId: "w-limits", leaseSeconds: 60, limit: 1, jobTypes: ["limits.step"] });
    const message = `boom ${"x".repeat(20 * 1024 * 1024)}`;
    await completeJobFailure(db, {
      lease: { jobId: job!.id, runNumber: job!.runNumber, attempt: job!.attempt, workerId: "w-limits" },
      kind: "TERMINAL",
      code: "limits.huge",
      message,
    });
    const stored = await queryRows<{ place: string; text: string }>(
      db,
      sql`select 'job' as place, last_error_message as text from runledger.job_queue where id = ${job!.id}
        union all select 'attempt', error_message from runledger.job_attempts where job_id = ${job!.id}
        union all select 'event', payload ->> 'error_message' from runledger.job_events
          where job_id = ${job!.id} and event_type = 'FAILED'
        union all select 'dead letter', error_message from runledger.job_dead_letters where job_id = ${job!.id}
        union all select 'step', last_error_message from runledger.workflow_steps where workflow_run_id = ${run.id}`,
    );
    expect(stored.map((row) => row.place).sort()).toEqual(["attempt", "dead letter", "event", "job", "step"]);
    for (const { place, text } of stored) {
      expect(Buffer.byteLength(text), place).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
      expect(text.startsWith("boom xxx"), place).toBe(true);
      const dropped = Number(MARKER.exec(text)?.[1]);
      expect(Buffer.byteLength(text) - Buffer.byteLength(MARKER.exec(text)![0]) + dropped, place).toBe(
        Buffer.byteLength(message),
      );
    }
  });

  it("an external step's 5 MB error message is stored cut the same way", async () => {
    const run = await enqueueWorkflowRun(db, {
      workflowType: "limits.gate",
      organizationId: null,
      metadata: {},
      idempotencyKey: null,
      steps: [externalStep("gate")],
    });
    const step = await completeExternalWorkflowStep(db, {
      scope: ALL_ORGANIZATIONS,
      workflowRunId: run.id,
      stepKey: "gate",
      terminalStatus: "FAILED",
      lastErrorCode: "gate.rejected",
      lastErrorMessage: "é".repeat(2_500_000),
    });
    expect(Buffer.byteLength(step.lastErrorMessage!)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(step.lastErrorMessage).toMatch(MARKER);
  });
});

describe("lookups of text that cannot be stored", () => {
  it("find nothing instead of failing in the database", async () => {
    for (const jobType of ["a\u0000b", "a\ud800b", " ", "k".repeat(100_000)]) {
      expect(await getJobDefinition(db, jobType)).toBeNull();
    }
  });
});

describe("a write the database refuses", () => {
  it("keeps the SQLSTATE and constraint in its cause, and no statement, parameter or payload anywhere", async () => {
    // A rule of the application's own, so the statement reaches the database and fails there.
    await db.execute(sql`alter table runledger.job_queue add constraint limits_no_card check (not (payload ? 'card'))`);
    const card = "4111111111111111";
    let error: unknown;
    try {
      await enqueueJob(db, { jobType: "limits.plain", payload: { card }, idempotencyKey: `key-${card}` });
    } catch (caught) {
      error = caught;
    } finally {
      await db.execute(sql`alter table runledger.job_queue drop constraint limits_no_card`);
    }
    expect(error).toBeInstanceOf(RunledgerError);
    const refused = error as RunledgerError;
    expect(refused.code).toBe("db.business_rule_violation");
    expect(refused.cause).toMatchObject({ name: "DriverFailure", code: "23514", constraint: "limits_no_card" });
    for (const printed of [
      inspect(refused, { depth: 20, showHidden: true }),
      JSON.stringify(refused),
      refused.message,
      String(refused.stack),
    ]) {
      expect(printed).not.toContain(card);
      expect(printed).not.toMatch(/insert into|params:|failed query/i);
    }
    expect(refused.internalMessage()).not.toContain(card);
    const [row] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from runledger.job_queue where job_type = 'limits.plain'`,
    );
    expect(row!.n).toBe(0);
  });
});
