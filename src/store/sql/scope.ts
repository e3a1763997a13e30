import { type SQL, sql } from "drizzle-orm";
import { scopedOrganization } from "../../core/index.ts";
import { isUuid } from "../validate.ts";

/**
 * The condition a scope puts on an `organization_id` column: true for all organizations, the
 * organization for one (an id that cannot name one sees nothing). Throws `scope.required` when
 * `scope` is not a scope, before any statement runs.
 */
export function scopeCondition(column: SQL, scope: unknown): SQL {
  const organizationId = scopedOrganization(scope);
  if (organizationId === null) return sql`true`;
  if (!isUuid(organizationId)) return sql`false`;
  return sql`${column} = ${organizationId}::uuid`;
}

/**
 * The condition naming one idempotency scope on an `organization_id` column: keys are unique per
 * organization, and among rows without one. One organization's scope names that organization;
 * `ALL_ORGANIZATIONS` names the rows enqueued without an organization (the scope such a key was
 * given in), never every organization's. Throws `scope.required` like `scopeCondition`.
 */
export function idempotencyScopeCondition(column: SQL, scope: unknown): SQL {
  const organizationId = scopedOrganization(scope);
  if (organizationId === null) return sql`${column} is null`;
  if (!isUuid(organizationId)) return sql`false`;
  return sql`${column} = ${organizationId}::uuid`;
}
