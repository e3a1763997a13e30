import type { DashboardStore } from "./data.ts";
import type { DashboardMutation, DashboardTarget } from "./options.ts";

/**
 * Every change the dashboard can make, one entry each: the POST path it answers, what it acts on
 * (for `authorize`), the store call, and the page to return to. A new operator action (retrying a
 * run's failed steps, pausing a job type) is one more entry here, an action name in
 * `DASHBOARD_ACTIONS` and a button on its page.
 */
export interface ActionRoute {
  action: DashboardMutation;
  /** Matched against the path below the mount path; groups are URL-decoded and passed on. */
  pattern: RegExp;
  target(params: string[]): DashboardTarget;
  run(store: DashboardStore, params: string[], form: URLSearchParams): Promise<unknown>;
  /** Where to go when the form names no page to return to. */
  back(params: string[]): string;
}

/** The operator's reason from the form, or what the dashboard records by default. */
function reason(form: URLSearchParams, fallback: string): string {
  const given = form.get("reason")?.trim();
  return given === undefined || given === "" ? fallback : given.slice(0, 500);
}

export const ACTIONS: ActionRoute[] = [
  {
    action: "job.cancel",
    pattern: /^\/jobs\/([^/]+)\/cancel$/,
    target: ([jobId]) => ({ jobId }),
    run: (store, [jobId], form) => store.cancelJob(jobId!, reason(form, "canceled in the dashboard")),
    back: ([jobId]) => `/jobs/${jobId}`,
  },
  {
    action: "job.requeue",
    pattern: /^\/jobs\/([^/]+)\/requeue$/,
    target: ([jobId]) => ({ jobId }),
    run: (store, [jobId], form) => store.requeueJob(jobId!, reason(form, "requeued in the dashboard")),
    back: ([jobId]) => `/jobs/${jobId}`,
  },
  {
    // By filter: every dead letter of the viewer's scope (of one job type when the path names it),
    // confirmed on /dead-letters/requeue, which shows the dry run's count.
    action: "dead_letters.requeue",
    pattern: /^\/dead-letters\/requeue(?:\/([^/]+))?$/,
    target: ([jobType]) => (jobType === undefined ? {} : { jobType }),
    run: (store, [jobType], form) => store.requeueDeadLetters(jobType, reason(form, "requeued in the dashboard")),
    back: ([jobType]) =>
      jobType === undefined ? "/dead-letters" : `/dead-letters?type=${encodeURIComponent(jobType)}`,
  },
  {
    action: "run.cancel",
    pattern: /^\/runs\/([^/]+)\/cancel$/,
    target: ([workflowRunId]) => ({ workflowRunId }),
    run: (store, [runId], form) => store.cancelRun(runId!, reason(form, "canceled in the dashboard")),
    back: ([runId]) => `/runs/${runId}`,
  },
  {
    action: "run.retry",
    pattern: /^\/runs\/([^/]+)\/retry$/,
    target: ([workflowRunId]) => ({ workflowRunId }),
    run: (store, [runId], form) => store.retryRun(runId!, reason(form, "retried in the dashboard")),
    back: ([runId]) => `/runs/${runId}`,
  },
  {
    action: "job_type.pause",
    pattern: /^\/job-types\/([^/]+)\/pause$/,
    target: ([jobType]) => ({ jobType }),
    run: (store, [jobType]) => store.setJobTypePaused(jobType!, true),
    back: () => "/job-types",
  },
  {
    action: "job_type.resume",
    pattern: /^\/job-types\/([^/]+)\/resume$/,
    target: ([jobType]) => ({ jobType }),
    run: (store, [jobType]) => store.setJobTypePaused(jobType!, false),
    back: () => "/job-types",
  },
  {
    action: "gate.approve",
    pattern: /^\/runs\/([^/]+)\/gates\/([^/]+)\/approve$/,
    target: ([workflowRunId, stepKey]) => ({ workflowRunId, stepKey }),
    run: (store, [runId, stepKey], form) =>
      store.completeGate(runId!, stepKey!, "SUCCEEDED", reason(form, "approved in the dashboard")),
    back: ([runId]) => `/runs/${runId}`,
  },
  {
    action: "gate.reject",
    pattern: /^\/runs\/([^/]+)\/gates\/([^/]+)\/reject$/,
    target: ([workflowRunId, stepKey]) => ({ workflowRunId, stepKey }),
    run: (store, [runId, stepKey], form) =>
      store.completeGate(runId!, stepKey!, "FAILED", reason(form, "rejected in the dashboard")),
    back: ([runId]) => `/runs/${runId}`,
  },
  {
    action: "schedule.pause",
    pattern: /^\/schedules\/([^/]+)\/pause$/,
    target: ([scheduleName]) => ({ scheduleName }),
    run: (store, [name]) => store.setScheduleActive(name!, false).then(found(name!)),
    back: () => "/schedules",
  },
  {
    action: "schedule.resume",
    pattern: /^\/schedules\/([^/]+)\/resume$/,
    target: ([scheduleName]) => ({ scheduleName }),
    run: (store, [name]) => store.setScheduleActive(name!, true).then(found(name!)),
    back: () => "/schedules",
  },
];

/** A schedule change that matched no schedule (of the viewer's organization) is an error too. */
export class NotFoundError extends Error {}
const found = (name: string) => (changed: boolean) => {
  if (!changed) throw new NotFoundError(`no schedule named ${name}`);
};
