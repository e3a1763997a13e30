import { RunledgerError } from "../../core/index.ts";
import { fail, isInt32, isUuid, matchable } from "../validate.ts";

/** The fence every worker write carries: which run, attempt and worker holds the lease. */
export interface LeaseIdentity {
  jobId: string;
  runNumber: number;
  attempt: number;
  workerId: string;
}

/** The lease itself, or `job.lease_owner_mismatch` when it is not a well-formed one. */
export function checkLease(lease: LeaseIdentity): LeaseIdentity {
  if (
    lease == null ||
    typeof lease !== "object" ||
    !isUuid(lease.jobId) ||
    !isInt32(lease.runNumber) ||
    !isInt32(lease.attempt) ||
    !matchable(lease.workerId)
  ) {
    fail("job.lease_owner_mismatch", {}, "malformed lease identity");
  }
  return lease;
}

/** The error a fenced write that matched no row raises: the lease is no longer held. */
export function leaseLost(lease: LeaseIdentity): RunledgerError {
  return new RunledgerError("job.lease_owner_mismatch", {
    details: { jobId: lease.jobId, runNumber: lease.runNumber, attempt: lease.attempt },
  });
}
