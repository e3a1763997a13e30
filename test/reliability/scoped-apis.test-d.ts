import { describe, expectTypeOf, it } from "vitest";
import type { ListedScopedApi, OmittableScopeApi, ScopedStoreApi } from "../support/scoped-apis.ts";

describe("organization-scoped store APIs, found from their types", () => {
  it("are exactly the listed ones (the tenant-isolation test runs each across tenants)", () => {
    expectTypeOf<ListedScopedApi>().toEqualTypeOf<ScopedStoreApi>();
  });

  it("take a scope no caller can omit", () => {
    expectTypeOf<OmittableScopeApi>().toBeNever();
  });

  it("do not include an enqueue, whose organization is data, or a worker's lease-fenced call", () => {
    expectTypeOf<
      Extract<ScopedStoreApi, "enqueueJob" | "enqueueJobs" | "enqueueWorkflowRun" | "claimJobs" | "completeJobSuccess">
    >().toBeNever();
  });
});
