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
});
