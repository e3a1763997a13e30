import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS } from "../../src/core/index.ts";
import {
  enqueueJob,
  getJobDefinition,
  getRequiredJobRuntimeConfig,
  insertJobLog,
  insertJobRuntimeConfigIfMissing,
  listJobDefinitions,
  listJobLogs,
  listJobRuntimeConfigs,
  setJobScheduleActive,
  syncJobDefinitions,
  syncJobDefinitionsExact,
  updateJobDefinition,
  upsertJobDefinition,
  upsertJobRuntimeConfig,
  upsertJobSchedule,
} from "../../src/store/index.ts";
import { useTestDatabase } from "../support/db.ts";
import { countRows } from "../support/factories.ts";

const { db } = await useTestDatabase();
const ORG_A = "0190f0a0-0000-7000-8000-00000000000a";
const ORG_B = "0190f0a0-0000-7000-8000-00000000000b";

describe("job definitions", () => {
  it("upserts with database defaults, updates partially and refuses bad values", async () => {
    expect(await upsertJobDefinition(db, { jobType: "defs.a" })).toMatchObject({
      version: 1,
      maxAttempts: 8,
      defaultTimeoutSeconds: 900,
      defaultPriority: 100,
      isEnabled: true,
    });
    expect(await updateJobDefinition(db, "defs.a", { defaultPriority: -5, isEnabled: false })).toMatchObject({
      defaultPriority: -5,
      isEnabled: false,
      maxAttempts: 8,
    });
    expect(await updateJobDefinition(db, "defs.missing", { maxAttempts: 2 })).toBeNull();
    await expect(upsertJobDefinition(db, { jobType: " " })).rejects.toMatchObject({
      code: "identifier.job_type_blank",
    });
    await expect(upsertJobDefinition(db, { jobType: "defs.b", maxAttempts: 0 })).rejects.toMatchObject({
      code: "job_definition.invalid_value",
      details: { field: "maxAttempts" },
    });
    expect(await getJobDefinition(db, "defs.b")).toBeNull();
    await expect(enqueueJob(db, { jobType: "defs.a" })).rejects.toMatchObject({
      code: "job.definition_not_found_or_disabled",
    });
  });

  it("refuses to disable a type an active schedule uses, and allows it once the schedule is paused", async () => {
    await upsertJobDefinition(db, { jobType: "defs.scheduled" });
    await upsertJobSchedule(db, { name: "defs-every-hour", jobType: "defs.scheduled", cronExpr: "0 0 * * * *" });
    for (const disable of [
      () => updateJobDefinition(db, "defs.scheduled", { isEnabled: false }),
      () => upsertJobDefinition(db, { jobType: "defs.scheduled", isEnabled: false }),
    ]) {
      await expect(disable()).rejects.toMatchObject({
        code: "job_definition.active_schedule_exists",
        details: { scheduleName: "defs-every-hour", jobType: "defs.scheduled" },
      });
    }
    expect(await getJobDefinition(db, "defs.scheduled")).toMatchObject({ isEnabled: true });
    expect(await setJobScheduleActive(db, "defs-every-hour", false, ALL_ORGANIZATIONS)).toBe(true);
    expect(await updateJobDefinition(db, "defs.scheduled", { isEnabled: false })).toMatchObject({ isEnabled: false });
  });

  it("lists by substring (wildcards escaped) across pages", async () => {
    for (const t of ["list.one", "list.two", "list_x", "listy"]) await upsertJobDefinition(db, { jobType: t });
    const first = await listJobDefinitions(db, { jobTypeContains: "LIST", limit: 2 });
    const second = await listJobDefinitions(db, { jobTypeContains: "LIST", limit: 2, after: first.next! });
    expect([...first.items, ...second.items].map((d) => d.jobType)).toEqual([
      "list.one",
      "list.two",
      "list_x",
      "listy",
    ]);
    expect((await listJobDefinitions(db, { jobTypeContains: "_", limit: 10 })).items.map((d) => d.jobType)).toEqual([
      "list_x",
    ]);
  });

  it("exact sync disables absent in-scope types only, and refuses while an active schedule uses one", async () => {
    await syncJobDefinitions(
      db,
      ["exact.a", "exact.b", "exact.c", "outside"].map((jobType) => ({ jobType })),
      "restore-enabled",
    );
    await upsertJobSchedule(db, {
      name: "uses-c",
      jobType: "exact.c",
      cronExpr: "0 0 * * * *",
      nextFireAt: new Date(),
    });
    const before = await countRows(db, "job_definitions", sql`is_enabled`);
    await expect(
      syncJobDefinitionsExact(db, [{ jobType: "exact.a" }], ["exact.a", "exact.b", "exact.c"]),
    ).rejects.toMatchObject({
      code: "catalog.active_schedule_for_absent_job_type",
      details: { scheduleName: "uses-c" },
    });
    expect(await countRows(db, "job_definitions", sql`is_enabled`)).toBe(before);

    const report = await syncJobDefinitionsExact(
      db,
      [{ jobType: "exact.a" }, { jobType: "exact.c" }],
      ["exact.a", "exact.b", "exact.c"],
    );
    expect(report).toMatchObject({ disabled: ["exact.b"] });
    expect((await getJobDefinition(db, "exact.b"))!.isEnabled).toBe(false);
    expect((await getJobDefinition(db, "outside"))!.isEnabled).toBe(true);
    await expect(syncJobDefinitionsExact(db, [], ["x"])).rejects.toMatchObject({
      code: "job_definition.empty_job_type_list",
    });
  });
});

describe("job logs", () => {
  beforeAll(async () => {
    await upsertJobDefinition(db, { jobType: "logs.job" });
  });

  it("records lines for a job and lists them in order, scoped by organization", async () => {
    const a = await enqueueJob(db, { jobType: "logs.job", organizationId: ORG_A });
    for (const message of ["one", "two", "three"]) {
      await insertJobLog(db, {
        scope: { organizationId: ORG_A },
        jobId: a.id,
        runNumber: 1,
        level: "info",
        message,
        payload: { message },
      });
    }
    const page = (await listJobLogs(db, { scope: ALL_ORGANIZATIONS, jobId: a.id, limit: 2 })).items;
    const rest = (await listJobLogs(db, { scope: ALL_ORGANIZATIONS, jobId: a.id, limit: 2, after: page.at(-1)!.id }))
      .items;
    expect([...page, ...rest].map((l) => l.message)).toEqual(["one", "two", "three"]);
    expect((await listJobLogs(db, { jobId: a.id, scope: { organizationId: ORG_B }, limit: 10 })).items).toEqual([]);
    const line = { jobId: a.id, runNumber: 1, level: "info", message: "x" };
    await expect(insertJobLog(db, { ...line, scope: ALL_ORGANIZATIONS, level: " " })).rejects.toMatchObject({
      code: "job.invalid_log",
    });
    await expect(
      insertJobLog(db, { ...line, scope: ALL_ORGANIZATIONS, jobId: "0190f0a0-0000-7000-8000-0000000000ff" }),
    ).rejects.toMatchObject({ code: "job.not_found" });
    // Another organization's job reads as one that does not exist; no scope is refused.
    await expect(insertJobLog(db, { ...line, scope: { organizationId: ORG_B } })).rejects.toMatchObject({
      code: "job.not_found",
    });
    await expect(insertJobLog(db, line as never)).rejects.toMatchObject({ code: "scope.required" });
    await expect(insertJobLog(db, { ...line, scope: ALL_ORGANIZATIONS, level: "x".repeat(600) })).rejects.toMatchObject(
      {
        code: "identifier.too_long",
      },
    );
  });
});

describe("job runtime configs", () => {
  it("upserts, inserts if missing, reads and refuses bad configs", async () => {
    await upsertJobDefinition(db, { jobType: "configured" });
    expect(
      await upsertJobRuntimeConfig(db, { jobType: "configured", schemaVersion: 1, config: { rate: 5 } }),
    ).toMatchObject({
      schemaVersion: 1,
      config: { rate: 5 },
    });
    expect(
      await insertJobRuntimeConfigIfMissing(db, { jobType: "configured", schemaVersion: 2, config: {} }),
    ).toMatchObject({
      schemaVersion: 1,
    });
    expect((await listJobRuntimeConfigs(db, { limit: 10 })).items.map((c) => c.jobType)).toEqual(["configured"]);
    await expect(getRequiredJobRuntimeConfig(db, "nope")).rejects.toMatchObject({
      code: "job.runtime_config_not_found",
    });
    await expect(
      upsertJobRuntimeConfig(db, { jobType: "configured", schemaVersion: 1, config: [1] as never }),
    ).rejects.toMatchObject({ code: "job.invalid_runtime_config" });
    await expect(upsertJobRuntimeConfig(db, { jobType: "ghost", schemaVersion: 1, config: {} })).rejects.toMatchObject({
      code: "job.definition_not_found",
    });
  });
});
