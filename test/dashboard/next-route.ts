import type { DashboardHandler } from "../../src/dashboard/index.ts";

/**
 * What `app/admin/jobs/[[...path]]/route.ts` exports in a Next.js app (README, "Dashboard"):
 *
 *   export const dynamic = "force-dynamic";
 *   export const GET = dashboard;
 *   export const POST = dashboard;
 *
 * Next calls them with the incoming `Request` (a `NextRequest`, which extends it).
 */
export function nextRouteHandlers(dashboard: DashboardHandler) {
  return { dynamic: "force-dynamic" as const, GET: dashboard, POST: dashboard };
}
