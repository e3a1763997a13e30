import { type JobStatus, MAX_WORKFLOW_STEPS, type WorkflowRunStatus } from "../core/index.ts";
import {
  cancelJob,
  cancelWorkflowRun,
  completeExternalWorkflowStep,
  countJobs,
  countJobsByStatus,
  type DeadLetterCursor,
  getJobById,
  getJobThroughput,
  getJobWorkflowStep,
  getOldestDueJob,
  getWorkflowRunById,
  type JobCursor,
  listDeadLetters,
  listJobAttempts,
  listJobDefinitions,
  listJobEvents,
  listJobLogs,
  listJobSchedules,
  listJobs,
  listLeasedJobs,
  listRecentWorkers,
  listWorkflowRuns,
  listWorkflowStepDependencies,
  listWorkflowSteps,
  pauseJobType,
  type RunledgerDb,
  requeueJob,
  requeueJobs,
  resumeJobType,
  retryWorkflowRun,
  searchJobsAndRuns,
  setJobScheduleActive,
  type WorkflowRunCursor,
  type WorkflowStepDependencyCursor,
  type WorkflowStepDependencyRecord,
} from "../store/index.ts";
import type { DashboardScope } from "./options.ts";

/*
 * The dashboard's only door to the store: every read and change goes through `storeFor(scope)`,
 * and every scoped store function takes that scope as it is.
 */

/** Most jobs one by-filter change acts on (the confirmation shows "10,000+" beyond). */
const BULK_LIMIT = 10_000;

/** Longest lists a detail page shows (attempts, events, logs, steps are capped by the store). */
const DETAIL_ROWS = 200;

export type DashboardStore = ReturnType<typeof storeFor>;

/** Store calls bound to one viewer's scope. */
export function storeFor(db: RunledgerDb, scope: DashboardScope, countCap: number) {
  const capped = { scope, cap: countCap };
  return {
    scope,
    countJobsByStatus: () => countJobsByStatus(db, capped),
    throughput: () => getJobThroughput(db, { ...capped, minutes: 60 }),
    oldestDueJob: () => getOldestDueJob(db, capped),
    recentWorkers: () => listRecentWorkers(db, { ...capped, limit: 20 }),
    search: (query: string, limit: number) => searchJobsAndRuns(db, { scope, query, limit }),

    jobs: (filter: { status?: JobStatus; jobTypeContains?: string; limit: number; after?: JobCursor }) =>
      listJobs(db, { scope, ...filter }),
    leasedJobs: (limit: number) => listLeasedJobs(db, { ...capped, limit }),
    job: (jobId: string) => getJobById(db, jobId, scope),
    jobStep: (jobId: string) => getJobWorkflowStep(db, jobId, scope),
    jobAttempts: async (jobId: string) => (await listJobAttempts(db, { scope, jobId, limit: DETAIL_ROWS })).items,
    jobEvents: async (jobId: string) => (await listJobEvents(db, { scope, jobId, limit: DETAIL_ROWS })).items,
    jobLogs: async (jobId: string) => (await listJobLogs(db, { scope, jobId, limit: DETAIL_ROWS })).items,
    cancelJob: (jobId: string, reason: string) => cancelJob(db, { scope, jobId, reason }),
    requeueJob: (jobId: string, reason: string) => requeueJob(db, { scope, jobId, reason }),

    deadLetters: (filter: { jobType?: string; limit: number; after?: DeadLetterCursor }) =>
      listDeadLetters(db, { scope, ...filter }),
    /** The dry run of `requeueDeadLetters`: how many it would requeue (at most 10,000 are counted). */
    countDeadLetters: (jobType: string | undefined) =>
      countJobs(db, { scope, statuses: ["DEAD_LETTERED"], jobType, limit: BULK_LIMIT }),
    requeueDeadLetters: (jobType: string | undefined, reason: string) =>
      requeueJobs(db, { scope, statuses: ["DEAD_LETTERED"], jobType, reason, limit: BULK_LIMIT }),

    runs: (filter: {
      status?: WorkflowRunStatus;
      workflowTypeContains?: string;
      limit: number;
      after?: WorkflowRunCursor;
    }) => listWorkflowRuns(db, { scope, ...filter }),
    run: (runId: string) => getWorkflowRunById(db, runId, scope),
    /** Every step: a run holds at most `MAX_WORKFLOW_STEPS`, one page. */
    runSteps: async (runId: string) =>
      (await listWorkflowSteps(db, { workflowRunId: runId, scope, limit: MAX_WORKFLOW_STEPS })).items,
    /** Every edge, page by page: the DAG is laid out whole. */
    runEdges: async (runId: string) => {
      const edges: WorkflowStepDependencyRecord[] = [];
      for (let after: WorkflowStepDependencyCursor | undefined, more = true; more; ) {
        const page = await listWorkflowStepDependencies(db, { workflowRunId: runId, scope, limit: 1000, after });
        edges.push(...page.items);
        after = page.next ?? undefined;
        more = page.next !== null;
      }
      return edges;
    },
    cancelRun: (workflowRunId: string, reason: string) => cancelWorkflowRun(db, { scope, workflowRunId, reason }),
    retryRun: (workflowRunId: string, reason: string) => retryWorkflowRun(db, { scope, workflowRunId, reason }),
    completeGate: (workflowRunId: string, stepKey: string, terminalStatus: "SUCCEEDED" | "FAILED", reason: string) =>
      completeExternalWorkflowStep(db, { scope, workflowRunId, stepKey, terminalStatus, statusReason: reason }),

    schedules: (filter: { limit: number; after?: string }) => listJobSchedules(db, { scope, ...filter }),
    setScheduleActive: (name: string, active: boolean) => setJobScheduleActive(db, name, active, scope),

    /** Job definitions are shared by every organization. */
    jobTypes: (filter: { limit: number; after?: string }) => listJobDefinitions(db, filter),
    /** Pausing a job type stops its claims for every organization: `authorize` decides who may. */
    setJobTypePaused: (jobType: string, paused: boolean) => (paused ? pauseJobType : resumeJobType)(db, { jobType }),
  };
}
