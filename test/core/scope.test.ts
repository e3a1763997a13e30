import { describe, expect, it } from "vitest";
import { ALL_ORGANIZATIONS, scopedOrganization } from "../../src/core/index.ts";

describe("organization scope", () => {
  it("names one organization or all of them, and nothing else", () => {
    expect(scopedOrganization({ organizationId: "0190f0a0-0000-7000-8000-000000000001" })).toBe(
      "0190f0a0-0000-7000-8000-000000000001",
    );
    expect(scopedOrganization(ALL_ORGANIZATIONS)).toBeNull();
    expect(scopedOrganization({ allOrganizations: true })).toBeNull();
    for (const bad of [undefined, null, {}, { organizationId: undefined }, { allOrganizations: false }, "all", 1]) {
      expect(() => scopedOrganization(bad)).toThrow(expect.objectContaining({ code: "scope.required" }));
    }
    expect(() => scopedOrganization({ organizationId: "x", allOrganizations: true })).toThrow(
      expect.objectContaining({ code: "scope.required" }),
    );
  });
});
