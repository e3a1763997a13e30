export * from "./db.ts";
export * from "./errors.ts";
export * from "./jobs/cancel.ts";
export * from "./jobs/claim.ts";
export {
  type CompletionResult,
  completeJobFailure,
  completeJobSuccess,
  completeJobsSuccess,
  type FailureOutcome,
  type JobFailureReport,
  type JobSuccess,
} from "./jobs/complete.ts";
export * from "./jobs/enqueue.ts";
export * from "./jobs/lease.ts";
export * from "./jobs/reads.ts";
export * from "./jobs/reaper.ts";
export type { JobRecord, LeaseIdentity } from "./jobs/record.ts";
export * from "./migrate.ts";
export * from "./notify.ts";
export { queryRows } from "./query.ts";
export * as schema from "./schema/index.ts";
