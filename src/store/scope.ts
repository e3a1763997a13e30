import { type SQL, sql } from "drizzle-orm";
import { scopedOrganization } from "../core/index.ts";
import { isUuid } from "./validate.ts";

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
