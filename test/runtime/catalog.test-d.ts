import * as v from "valibot";
import { describe, expectTypeOf, it } from "vitest";
import { JobCatalog } from "../../src/runtime/index.ts";
import type { RunledgerDb } from "../../src/store/index.ts";

declare const db: RunledgerDb;

const catalog = new JobCatalog()
  .job(
    "typed",
    async (payload) => {
      expectTypeOf(payload).toEqualTypeOf<{ count: number }>();
    },
    { payload: v.object({ count: v.number() }) },
  )
  .job("untyped", async (payload) => {
    expectTypeOf(payload).toBeUnknown();
  });

describe("JobCatalog types", () => {
  it("checks enqueue payloads against the schema", () => {
    void catalog.enqueue(db, "typed", { count: 1 });
    // @ts-expect-error wrong payload shape
    void catalog.enqueue(db, "typed", { count: "one" });
    // @ts-expect-error unknown job type
    void catalog.enqueue(db, "missing", {});
    void catalog.enqueue(db, "untyped", { anything: true });
    expectTypeOf(catalog.jobTypes()).toEqualTypeOf<("typed" | "untyped")[]>();
  });

  it("types workflow steps and the try* variants by the catalog", () => {
    catalog.workflowStep("a", "typed", { count: 1 });
    // @ts-expect-error wrong payload shape
    catalog.workflowStep("a", "typed", { count: "one" });
    // @ts-expect-error unknown job type
    catalog.tryWorkflowStep("a", "missing", {});
    const grown = catalog.tryJob("more", async () => {}, { payload: v.object({ id: v.string() }) });
    if (grown.ok) {
      void grown.value.enqueue(db, "more", { id: "x" });
      // @ts-expect-error the new type's schema applies
      void grown.value.enqueue(db, "more", { id: 1 });
    }
  });
});

describe("JobCatalog workflow and schedule types", () => {
  it("types workflow steps by the catalog", () => {
    catalog.workflow("wf").job("a", "typed", { count: 1 }).job("b", "untyped", { anything: true });
    // @ts-expect-error wrong payload shape for the step's job type
    catalog.workflow("wf").job("a", "typed", { count: "one" });
    // @ts-expect-error unknown job type
    catalog.workflow("wf").job("a", "missing", {});
  });

  it("types schedule templates by the catalog, requiring one the schema needs", () => {
    const base = { name: "s", cronExpr: "0 0 * * * *", nextFireAt: new Date() };
    catalog.jobSchedule({ ...base, jobType: "typed", payloadTemplate: { count: 1 } });
    catalog.jobSchedule({ ...base, jobType: "untyped" });
    // @ts-expect-error wrong template shape
    catalog.jobSchedule({ ...base, jobType: "typed", payloadTemplate: { count: "one" } });
    // @ts-expect-error the schema needs a template
    catalog.jobSchedule({ ...base, jobType: "typed" });
  });
});

describe("JobCatalog flow limit types", () => {
  it("takes limits as numbers and a rate limit with both fields", () => {
    new JobCatalog().job("limited", async () => {}, {
      maxConcurrency: 5,
      maxConcurrencyPerKey: 1,
      rateLimit: { limit: 10, intervalMs: 1000 },
    });
    // @ts-expect-error a rate limit needs its interval
    new JobCatalog().job("rated", async () => {}, { rateLimit: { limit: 10 } });
    // @ts-expect-error limits are numbers
    new JobCatalog().job("capped", async () => {}, { maxConcurrency: "5" });
  });
});
