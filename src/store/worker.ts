/*
 * `runledger/store/worker`: the low-level lifecycle a worker drives — claim, heartbeat, progress,
 * complete, fail, hand back, reap, fire schedules. The runtime's Supervisor calls these for you;
 * an application needs them only to build a worker of its own. What applications call (enqueue,
 * admin reads and mutations, migrations) is `runledger/store`.
 *
 * Every lease-fenced write takes one params object carrying the lease as `lease` (`leases` for
 * many): the `LeaseIdentity` the claim handed out (a `RunnableJob` is its own lease), passed
 * through unchanged.
 */
export type { FlowClaimMemo } from "./flow/claim.ts";
export {
  type ClaimedJob,
  type ClaimJobsInput,
  claimJobs,
  claimRunnableJobs,
  claimSize,
  type JobScheduleProvenance,
  MAX_CLAIM,
  type RunnableJob,
} from "./jobs/claim.ts";
export {
  type CompletionResult,
  completeJobFailure,
  completeJobSuccess,
  completeJobsSuccess,
  type FailureOutcome,
  type JobFailureReport,
  type JobSuccess,
} from "./jobs/complete.ts";
export * from "./jobs/expired-leases.ts";
export {
  heartbeatJob,
  heartbeatJobs,
  type JobHeartbeat,
  type JobProgress,
  type JobProgressUpdate,
  type JobsHeartbeat,
  releaseUnstartedJobClaim,
  returnUnstartedClaims,
  type UnstartedClaimRelease,
  type UnstartedClaimsReturn,
  updateJobProgress,
} from "./jobs/lease.ts";
export type { LeaseIdentity } from "./jobs/lease-identity.ts";
export * from "./schedules/materialize.ts";
