import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { JobCatalog } from "../../src/runtime/index.ts";
import { getJobById, listJobDefinitions } from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { ledgerCounts } from "../support/factories.ts";

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
    expect((await getJobById(db, id))!.payload).toEqual({ to: "ada@example.com", subject: "hi" });
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
    expect(() => catalog.workflow("wf").job("a", "email.send", {}).job("b", "missing.type", {})).toThrow(
      expect.objectContaining({ code: "workflow.invalid_dag_unknown_job_type" }),
    );
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
    expect(report.disabledJobTypes).toEqual(["email.send"]);
  });
});
