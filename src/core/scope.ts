import { RunledgerError } from "./errors.ts";

/**
 * Which organizations a read or mutation may see: one organization, or every organization by
 * name (`ALL_ORGANIZATIONS`, for admin tools). Scoped APIs take one and have no default, so a
 * missing session value can never widen what a caller sees.
 */
export type OrganizationScope = { readonly organizationId: string } | typeof ALL_ORGANIZATIONS;

/** The explicit all-organizations scope. */
export const ALL_ORGANIZATIONS: { readonly allOrganizations: true } = Object.freeze({ allOrganizations: true });

/**
 * The organization a scope names, or null for all organizations. Throws `scope.required` when
 * `scope` is not a scope (omitted, null, or neither shape), before anything is read or written.
 */
export function scopedOrganization(scope: unknown): string | null {
  if (scope === ALL_ORGANIZATIONS) return null;
  if (scope !== null && typeof scope === "object") {
    const { organizationId, allOrganizations } = scope as { organizationId?: unknown; allOrganizations?: unknown };
    if (allOrganizations === true && organizationId === undefined) return null;
    if (typeof organizationId === "string" && allOrganizations === undefined) return organizationId;
  }
  throw new RunledgerError("scope.required");
}
