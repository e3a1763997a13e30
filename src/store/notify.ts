/** Channel workers LISTEN on: a notification means work may be claimable now. */
export const JOBS_CHANNEL = "runledger_jobs";
/** Channel announcing canceled jobs (payload: job id), so a running handler's signal aborts at once. */
export const CANCEL_CHANNEL = "runledger_cancel";
/**
 * Channel announcing operator changes to a workflow run (payload: run id): a gate completed or the
 * run canceled. Sent at commit, so a page showing the run can refresh at once.
 */
export const WORKFLOWS_CHANNEL = "runledger_workflows";

/**
 * Channel announcing workflow runs that reached a terminal status (payload: their ids, comma
 * separated; empty when too many finished at once to list, meaning "look again"). Sent by the
 * statement that sets the status, at most once per statement.
 */
export const RUN_TERMINAL_CHANNEL = "runledger_workflow_run_terminal";
