/** Channel workers LISTEN on: a notification means work may be claimable now. */
export const JOBS_CHANNEL = "runledger_jobs";
/** Channel announcing canceled jobs (payload: job id), so a running handler's signal aborts at once. */
export const CANCEL_CHANNEL = "runledger_cancel";
/**
 * Channel announcing operator changes to a workflow run (payload: run id): a gate completed or the
 * run canceled. Sent at commit, so a page showing the run can refresh at once.
 */
export const WORKFLOWS_CHANNEL = "runledger_workflows";
