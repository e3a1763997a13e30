import { ALL_ORGANIZATIONS, type OrganizationScope, scopedOrganization } from "../core/index.ts";
import type { RunledgerDb } from "../store/index.ts";

/**
 * Which organizations a viewer sees: one, or every organization (`ALL_ORGANIZATIONS`, for
 * operators of the whole system): the store's `OrganizationScope`. Every read and action of the
 * dashboard is scoped by it.
 */
export type DashboardScope = OrganizationScope;

/** What an operator may do; `read` covers every page, each other action one kind of button. */
export const DASHBOARD_ACTIONS = [
  "read",
  "job.cancel",
  "job.requeue",
  "dead_letters.requeue",
  "run.cancel",
  "run.retry",
  "gate.approve",
  "gate.reject",
  "schedule.pause",
  "schedule.resume",
  "job_type.pause",
  "job_type.resume",
] as const;
export type DashboardAction = (typeof DASHBOARD_ACTIONS)[number];
export type DashboardMutation = Exclude<DashboardAction, "read">;

/** What a mutation acts on, passed to `authorize` (and handy for an audit log). */
export interface DashboardTarget {
  jobId?: string;
  workflowRunId?: string;
  stepKey?: string;
  scheduleName?: string;
  /**
   * A by-filter change's job type (`dead_letters.requeue`; absent: every type), or the job type a
   * `job_type.pause`/`job_type.resume` switches for every organization (job types are shared).
   */
  jobType?: string;
}

/** Where a JSON value shown by the dashboard comes from, for `redact`. */
export type RedactKind =
  | "job.payload"
  | "job.checkpoint"
  | "job.event"
  | "job.log"
  | "run.metadata"
  | "step.payload"
  | "schedule.payload_template";

export interface RedactContext {
  kind: RedactKind;
  /** The job type (or a step's or schedule's), when there is one. */
  jobType?: string | null;
  organizationId?: string | null;
}

export interface DashboardOptions {
  /** The database handle (`createDb`); the dashboard never closes it. */
  db: RunledgerDb;
  /** The path the dashboard is mounted at, such as `/admin/jobs` (trailing slash optional). Default `/`. */
  basePath?: string;
  /**
   * Decide every request: `read` for pages and live updates, one action per kind of change.
   * `scope` is the viewer's (from `scope`); `target` names what a change acts on. Return false
   * to answer 403. Called without `target` too, to decide which buttons a page shows.
   */
  authorize: (
    request: Request,
    action: DashboardAction,
    scope: DashboardScope,
    target?: DashboardTarget,
  ) => boolean | Promise<boolean>;
  /** The viewer's scope, from your session. Default: every organization (`ALL_ORGANIZATIONS`). */
  scope?: (request: Request) => DashboardScope | Promise<DashboardScope>;
  /** Show no action and refuse every change with 405, whatever `authorize` says. */
  readOnly?: boolean;
  /**
   * Rewrite a JSON value (payload, checkpoint, metadata, event or log payload, schedule template)
   * before it is shown, for instance to mask secrets. Default: shown as stored.
   */
  redact?: (value: unknown, context: RedactContext) => unknown;
  /**
   * Key that signs CSRF tokens. Default: random per process, which is right for one process;
   * give every instance behind a load balancer the same secret.
   */
  csrfSecret?: string;
  /** Live updates. */
  live?: {
    /**
     * Shortest time between two refreshes of a page, and how long overview figures are reused
     * for a scope, however many viewers ask. Default 2,000 ms, at least 1,000 ms.
     */
    minIntervalMs?: number;
    /** How often pages refresh without a notification (and polling clients poll). Default 5,000 ms. */
    pollIntervalMs?: number;
  };
  /** Rows per list page. Default 50. */
  pageSize?: number;
  /** Rows an overview count reads at most per group before showing "10,000+". Default 10,000. */
  countCap?: number;
  /** Called with errors the dashboard answered with 500. Default: `console.error`. */
  onError?: (error: unknown, request: Request) => void;
}

/** Options with defaults applied and values checked. */
export interface ResolvedOptions {
  db: RunledgerDb;
  basePath: string;
  authorize: DashboardOptions["authorize"];
  scope: (request: Request) => DashboardScope | Promise<DashboardScope>;
  readOnly: boolean;
  redact: (value: unknown, context: RedactContext) => unknown;
  minIntervalMs: number;
  pollIntervalMs: number;
  pageSize: number;
  countCap: number;
  onError: (error: unknown, request: Request) => void;
}

export const MIN_REFRESH_INTERVAL_MS = 1000;

function positiveInt(value: number | undefined, fallback: number, name: string, min = 1, max = 1_000_000): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(`createDashboard: ${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** `/admin/jobs/` → `/admin/jobs`, `/` → `` (links are built as `${basePath}/jobs`). */
export function normalizeBasePath(basePath: string | undefined): string {
  const path = (basePath ?? "/").trim();
  if (!path.startsWith("/") || /[?#\s]|\/\/|\/\.\.?(\/|$)/.test(path)) {
    throw new TypeError("createDashboard: basePath must be an absolute path such as /admin/jobs");
  }
  return path.replace(/\/+$/, "");
}

export function resolveOptions(options: DashboardOptions): ResolvedOptions {
  if (options === null || typeof options !== "object") throw new TypeError("createDashboard: options are required");
  if (options.db === undefined || options.db === null) throw new TypeError("createDashboard: db is required");
  if (typeof options.authorize !== "function") {
    throw new TypeError("createDashboard: authorize(request, action, scope) is required");
  }
  const minIntervalMs = Math.max(
    MIN_REFRESH_INTERVAL_MS,
    positiveInt(options.live?.minIntervalMs, 2000, "live.minIntervalMs", 1, 3_600_000),
  );
  return {
    db: options.db,
    basePath: normalizeBasePath(options.basePath),
    authorize: options.authorize,
    scope: options.scope ?? (() => ALL_ORGANIZATIONS),
    readOnly: options.readOnly === true,
    redact: options.redact ?? ((value) => value),
    minIntervalMs,
    pollIntervalMs: Math.max(
      minIntervalMs,
      positiveInt(options.live?.pollIntervalMs, 5000, "live.pollIntervalMs", 1, 3_600_000),
    ),
    pageSize: positiveInt(options.pageSize, 50, "pageSize", 1, 500),
    countCap: positiveInt(options.countCap, 10_000, "countCap", 1, 1_000_000),
    onError: options.onError ?? ((error) => console.error("runledger dashboard:", error)),
  };
}

/** A scope as checked at the edge: a scope, whose organization id is a UUID. */
export function checkScope(scope: unknown): DashboardScope {
  let organizationId: string | null;
  try {
    organizationId = scopedOrganization(scope);
  } catch {
    organizationId = "";
  }
  if (organizationId === null) return ALL_ORGANIZATIONS;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(organizationId)) {
    return Object.freeze({ organizationId: organizationId.toLowerCase() });
  }
  throw new TypeError("runledger dashboard: scope() must return { organizationId: <uuid> } or ALL_ORGANIZATIONS");
}
