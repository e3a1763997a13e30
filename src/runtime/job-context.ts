import type { JobContext, JobProgressUpdate } from "../core/index.ts";
import {
  heartbeatJob,
  insertJobLog,
  type LeaseIdentity,
  type RunledgerDb,
  type RunnableJob,
  updateJobProgress,
} from "../store/index.ts";

/**
 * The context a handler receives: who it is running as, its signal, and lease-fenced writes.
 * `signal` is asked for only when the handler reads `context.signal`: most handlers never do,
 * and an AbortController per job was a visible share of a busy worker's CPU and garbage.
 */
export function createJobContext(
  db: RunledgerDb,
  job: RunnableJob,
  lease: LeaseIdentity,
  signal: () => AbortSignal,
  leaseSeconds: number,
): JobContext {
  return {
    jobId: job.id,
    jobType: job.jobType,
    organizationId: job.organizationId,
    runNumber: job.runNumber,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    workerId: lease.workerId,
    workflowRunId: job.workflowRunId,
    workflowStepId: job.workflowStepId,
    get signal() {
      return signal();
    },
    progress: (update: JobProgressUpdate) => updateJobProgress(db, lease, update),
    heartbeat: async () => {
      await heartbeatJob(db, lease, { leaseSeconds });
    },
    log: async (level, message, payload) => {
      await insertJobLog(db, {
        jobId: job.id,
        runNumber: job.runNumber,
        attempt: job.attempt,
        level,
        message,
        payload,
      });
    },
    checkpoint: (value) => updateJobProgress(db, lease, { checkpoint: value }),
  } as JobContext;
}
