export { ALL_ORGANIZATIONS } from "../core/index.ts";
export { createDashboard, type DashboardHandler } from "./handler.ts";
export { type NodeListener, toNodeListener } from "./node.ts";
export {
  DASHBOARD_ACTIONS,
  type DashboardAction,
  type DashboardMutation,
  type DashboardOptions,
  type DashboardScope,
  type DashboardTarget,
  type RedactContext,
  type RedactKind,
} from "./options.ts";
export { type ServeDashboardOptions, type ServedDashboard, serveDashboard } from "./serve.ts";
