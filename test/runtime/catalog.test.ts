import { sql } from "drizzle-orm";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, WorkflowRunEnqueueBuilder, WorkflowStepEnqueueBuilder } from "../../src/core/index.ts";
import { JobCatalog } from "../../src/runtime/index.ts";
import {
  enqueueJob,
  enqueueWorkflowRun,
  getJobById,
  getJobDefinition,
  listJobDefinitions,
  updateJobDefinition,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows, ledgerCounts, runSteps } from "../support/factories.ts";

const { db } = await useTestDatabase();

const catalog = new JobCatalog()
  .job("email.send", async () => {}, {
    payload: v.object({ to: v.pipe(v.string(), v.email()), subject: v.string() }),
    maxAttempts: 5,
  })
  .job("noop", async () => {});

describe("JobCatalog", () => {
  it("syncs its definitions with catalog defaults and per-job overrides", async () => {
    await catalog.syncDefinitions(db);
    const { items } = await listJobDefinitions(db, { limit: 100 });
    expect(
      items.map((d) => [d.jobType, d.maxAttempts, d.defaultTimeoutSeconds, d.defaultPriority, d.isEnabled]),
    ).toEqual([
      ["email.send", 5, 300, 0, true],
      ["noop", 3, 300, 0, true],
    ]);
  });

  it("enqueues a payload that passes its schema", async () => {
    await catalog.syncDefinitions(db);
    const { id } = await catalog.enqueue(db, "email.send", { to: "ada@example.com", subject: "hi" });
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))!.payload).toEqual({ to: "ada@example.com", subject: "hi" });
  });

  it("refuses an invalid payload, an unknown type and a disabled catalog, writing nothing", async () => {
    await catalog.syncDefinitions(db);
    const before = await ledgerCounts(db);
    const error = await catalog
      .enqueue(db, "email.send", { to: "not an email", subject: "secret subject" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "job.invalid_payload", details: { issues: [{ path: "to" }] } });
    expect(JSON.stringify(error)).not.toContain("not an email");
    // @ts-expect-error unknown job types do not type-check either
    expect(() => catalog.request("nope", {})).toThrow(expect.objectContaining({ code: "catalog.unknown_job_type" }));
    const disabled = new JobCatalog().job("x", async () => {}).enabled(false);
    expect(() => disabled.request("x", {})).toThrow(expect.objectContaining({ code: "catalog.disabled_job_type" }));
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("rejects duplicate, blank and mismatched registrations", () => {
    expect(() => new JobCatalog().job("a", async () => {}).job("a", async () => {})).toThrow(
      expect.objectContaining({ code: "catalog.duplicate_job_type" }),
    );
    expect(() => new JobCatalog().job(" ", async () => {})).toThrow(
      expect.objectContaining({ code: "catalog.invalid_job_type" }),
    );
    expect(() => new JobCatalog().job("a", { jobType: "b", execute: async () => {} })).toThrow(
      expect.objectContaining({ code: "catalog.handler_job_type_mismatch" }),
    );
    expect(() => new JobCatalog().job("a", async () => {}, { maxAttempts: 0 })).toThrow(
      expect.objectContaining({ code: "job_definition.invalid_value" }),
    );
  });

  it("builds workflows that refuse job types the catalog lacks", () => {
    const builder = catalog.workflow("wf").job("a", "email.send", { to: "ada@example.com", subject: "hi" });
    // @ts-expect-error the catalog has no such type
    expect(() => builder.job("b", "missing.type", {})).toThrow(
      expect.objectContaining({ code: "workflow.invalid_dag_unknown_job_type" }),
    );
  });

  it("refuses a workflow step whose payload fails its schema, at the call, and writes nothing", async () => {
    await catalog.syncDefinitions(db);
    const before = await ledgerCounts(db);
    const builder = catalog.workflow("wf").job("ok", "email.send", { to: "ada@example.com", subject: "hi" });
    let error: unknown;
    try {
      builder.job("bad", "email.send", { to: "not an email", subject: "secret subject" });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: "job.invalid_payload",
      details: { jobType: "email.send", stepKey: "bad", issues: [{ path: "to", kind: "email" }] },
    });
    expect(JSON.stringify(error)).not.toContain("not an email");
    // The refused step was not added: the builder still builds the one good step.
    expect(builder.build().steps.map((step) => step.stepKey)).toEqual(["ok"]);
    // A payload of the wrong shape is refused at run time too (an untyped caller's mistake).
    expect(() =>
      catalog
        .workflow("wf")
        // @ts-expect-error subject is missing
        .job("a", "email.send", { to: "ada@example.com" }),
    ).toThrow(expect.objectContaining({ code: "job.invalid_payload" }));
    // Schemaless types take anything.
    expect(() => catalog.workflow("wf").job("n", "noop", { anything: [1, 2] })).not.toThrow();
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("refuses a schedule template that fails its schema, and an omitted template the schema needs", () => {
    const schedule = { name: "mail.hourly", cronExpr: "0 0 * * * *", nextFireAt: new Date() };
    expect(
      catalog.jobSchedule({ ...schedule, jobType: "email.send", payloadTemplate: { to: "a@b.co", subject: "s" } }),
    ).toMatchObject({ jobType: "email.send", payloadTemplate: { to: "a@b.co", subject: "s" } });
    expect(() =>
      catalog.jobSchedule({ ...schedule, jobType: "email.send", payloadTemplate: { to: "nope", subject: "s" } }),
    ).toThrow(
      expect.objectContaining({
        code: "job.invalid_payload",
        details: expect.objectContaining({ scheduleName: "mail.hourly", field: "payloadTemplate" }),
      }),
    );
    // @ts-expect-error email.send's schema needs a template
    expect(() => catalog.jobSchedule({ ...schedule, jobType: "email.send" })).toThrow(
      expect.objectContaining({ code: "job.invalid_payload" }),
    );
    expect(catalog.jobSchedule({ ...schedule, jobType: "noop" })).toMatchObject({ jobType: "noop" });
  });

  it("returns refusals from the try* variants instead of throwing, leaving the catalog unchanged", () => {
    const base = new JobCatalog().job("a", async () => {});
    const added = base.tryJob("b", async () => {});
    expect(added.ok && added.value.jobTypes()).toEqual(["a", "b"]);
    const duplicate = base.tryJob("a", async () => {});
    expect(duplicate).toMatchObject({ ok: false, error: { code: "catalog.duplicate_job_type" } });
    expect(base.tryJob(" ", async () => {})).toMatchObject({ ok: false, error: { code: "catalog.invalid_job_type" } });
    expect(base.jobTypes()).toEqual(["a", "b"]);

    expect(base.tryRetryDelayOverride("a", "app.busy", 500)).toMatchObject({ ok: true });
    expect(base.tryRetryDelayOverride("a", "app.busy", 0)).toMatchObject({
      ok: false,
      error: { code: "catalog.invalid_retry_delay" },
    });
    // @ts-expect-error unknown job types do not type-check
    expect(base.tryRetryDelayOverride("zzz", "x", 1)).toMatchObject({
      ok: false,
      error: { code: "catalog.unknown_job_type" },
    });
    expect(base.toRegistry().retryDelayOverride("a", "app.busy")).toBe(500);
  });

  it("builds workflow steps of catalog jobs, refusing unknown types, bad payloads and a disabled catalog", async () => {
    await catalog.syncDefinitions(db);
    const step = catalog
      .workflowStep("mail", "email.send", { to: "ada@example.com", subject: "hi" })
      .maxAttempts(2)
      .dependsOnSuccess(["gate"]);
    const run = await enqueueWorkflowRun(
      db,
      WorkflowRunEnqueueBuilder.tryNew("catalog.flow", {})
        .step(WorkflowStepEnqueueBuilder.tryExternal("gate", {}))
        .step(step)
        .build(),
    );
    const steps = await runSteps(db, run.id);
    expect(steps.map((s) => [s.stepKey, s.jobType, s.maxAttempts])).toEqual([
      ["gate", null, null],
      ["mail", "email.send", 2],
    ]);

    const invalid = (() => {
      try {
        catalog.workflowStep("mail", "email.send", { to: "nope", subject: "secret" });
      } catch (error) {
        return error;
      }
    })();
    expect(invalid).toMatchObject({
      code: "job.invalid_payload",
      details: { stepKey: "mail", jobType: "email.send", issues: [{ path: "to" }] },
    });
    expect(JSON.stringify(invalid)).not.toContain("secret");
    // @ts-expect-error unknown job types do not type-check
    expect(catalog.tryWorkflowStep("x", "missing", {})).toMatchObject({
      ok: false,
      error: { code: "catalog.unknown_job_type", details: { stepKey: "x" } },
    });
    expect(catalog.tryWorkflowStep(" ", "noop", {})).toMatchObject({
      ok: false,
      error: { code: "workflow.invalid_dag_step_key_blank" },
    });
    const off = new JobCatalog().job("noop", async () => {}).enabled(false);
    expect(off.tryWorkflowStep("n", "noop", {})).toMatchObject({
      ok: false,
      error: { code: "catalog.disabled_job_type" },
    });
    expect(catalog.tryWorkflowStep("n", "noop", { any: 1 })).toMatchObject({ ok: true });
  });

  it("keeps an operator's pause on sync, and disables everything when the catalog is disabled", async () => {
    const { updateJobDefinition } = await import("../../src/store/index.ts");
    await catalog.syncDefinitions(db);
    await updateJobDefinition(db, "noop", { isEnabled: false });
    await catalog.syncDefinitions(db);
    const paused = (await listJobDefinitions(db, { limit: 100 })).items.find((d) => d.jobType === "noop");
    expect(paused!.isEnabled).toBe(false);
    const off = new JobCatalog().job("email.send", async () => {}).enabled(false);
    const report = await off.syncDefinitions(db);
    expect(report.disabled).toEqual(["email.send"]);
  });

  it("reports each type of a sync as created, updated or unchanged, with the same keys for an exact sync", async () => {
    const first = new JobCatalog().job("sync.a", async () => {}).job("sync.b", async () => {}, { maxAttempts: 2 });
    expect(await first.syncDefinitions(db)).toEqual({
      created: ["sync.a", "sync.b"],
      updated: [],
      unchanged: [],
      disabled: [],
    });
    const second = new JobCatalog().job("sync.a", async () => {}).job("sync.b", async () => {}, { maxAttempts: 5 });
    expect(await second.syncDefinitions(db)).toEqual({
      created: [],
      updated: ["sync.b"],
      unchanged: ["sync.a"],
      disabled: [],
    });
    const exact = new JobCatalog().job("sync.b", async () => {}, { maxAttempts: 5 }).job("sync.c", async () => {});
    expect(await exact.syncDefinitionsExact(db, ["sync.a", "sync.b", "sync.c"])).toEqual({
      created: ["sync.c"],
      updated: [],
      unchanged: ["sync.b"],
      disabled: ["sync.a"],
    });
  });
});

describe("JobCatalog on a database no worker has synced yet", () => {
  it("syncs its definitions once when the first enqueue finds them missing, then enqueues", async () => {
    const fresh = new JobCatalog().job("fresh.first", async () => {}).job("fresh.second", async () => {});
    expect(await getJobDefinition(db, "fresh.first")).toBeNull();
    const { id } = await fresh.enqueue(db, "fresh.first", { n: 1 });
    expect((await getJobById(db, id, ALL_ORGANIZATIONS))!.status).toBe("PENDING");
    // The whole catalog was synced, so the other type needs no second sync.
    expect(await getJobDefinition(db, "fresh.second")).toMatchObject({ isEnabled: true });
    await fresh.enqueue(db, "fresh.second", {});
  });

  it("lets concurrent first enqueues share the one sync", async () => {
    const fresh = new JobCatalog().job("fresh.burst", async () => {});
    const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => fresh.enqueue(db, "fresh.burst", { i })));
    expect(new Set(jobs.map((job) => job.id)).size).toBe(10);
  });

  it("syncs inside the caller's transaction: a rollback leaves neither job nor definition", async () => {
    const fresh = new JobCatalog().job("fresh.in_tx", async () => {});
    await db
      .transaction(async (tx) => {
        await fresh.enqueue(tx, "fresh.in_tx", {});
        throw new Error("roll back");
      })
      .catch(() => {});
    expect(await getJobDefinition(db, "fresh.in_tx")).toBeNull();
    expect(await countRows(db, "job_queue", sql`job_type = 'fresh.in_tx'`)).toBe(0);
  });

  it("keeps an operator's pause: a disabled type stays refused, with details saying how to fix it", async () => {
    const fresh = new JobCatalog().job("fresh.paused", async () => {});
    await fresh.syncDefinitions(db);
    await updateJobDefinition(db, "fresh.paused", { isEnabled: false });
    const before = await ledgerCounts(db);
    for (let i = 0; i < 2; i++) {
      const error = await fresh.enqueue(db, "fresh.paused", {}).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: "job.definition_not_found_or_disabled",
        details: { jobType: "fresh.paused", hint: expect.stringContaining("catalog.syncDefinitions(db)") },
      });
    }
    expect(await getJobDefinition(db, "fresh.paused")).toMatchObject({ isEnabled: false });
    expect(await ledgerCounts(db)).toEqual(before);
  });

  it("says how to fix a missing definition when enqueueing without a catalog", async () => {
    await expect(enqueueJob(db, { jobType: "fresh.unknown" })).rejects.toMatchObject({
      code: "job.definition_not_found_or_disabled",
      details: { jobType: "fresh.unknown", hint: expect.stringContaining("upsertJobDefinition") },
    });
  });
});
