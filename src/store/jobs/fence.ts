import { sql } from "drizzle-orm";
import { RunledgerError } from "../../core/index.ts";
import { fail, isBlank, isInt32, isUuid } from "../validate.ts";
import type { LeaseIdentity } from "./record.ts";

/**
 * The lease fence every worker write carries: same job, run, attempt and worker, still LEASED,
 * and (for live writes) a lease that has not run out by the database clock. There is no grace
 * period after expiry, even if nobody else has taken the job.
 */
export const liveLease = (alias: string) =>
  sql.raw(
    `${alias}.status = 'LEASED' and ${alias}.lease_expires_at > clock_timestamp()
     and ${alias}.id = input.job_id and ${alias}.run_number = input.run_number
     and ${alias}.attempt = input.attempt and ${alias}.worker_id = input.worker_id`,
  );

/** Lease identities as a `jsonb_to_recordset` input named `input`. */
export const leaseInput = (placeholder: string) => sql`
  jsonb_to_recordset(${sql.placeholder(placeholder)}::jsonb) as input(job_id uuid, run_number int, attempt int, worker_id text)`;

export function checkLease(lease: LeaseIdentity): LeaseIdentity {
  if (
    lease === null ||
    typeof lease !== "object" ||
    !isUuid(lease.jobId) ||
    !isInt32(lease.runNumber) ||
    !isInt32(lease.attempt) ||
    isBlank(lease.workerId)
  ) {
    fail("job.lease_owner_mismatch", {}, "malformed lease identity");
  }
  return lease;
}

export function leaseRow(lease: LeaseIdentity) {
  return { job_id: lease.jobId, run_number: lease.runNumber, attempt: lease.attempt, worker_id: lease.workerId };
}

export function leaseLost(lease: LeaseIdentity): RunledgerError {
  return new RunledgerError("job.lease_owner_mismatch", {
    details: { jobId: lease.jobId, runNumber: lease.runNumber, attempt: lease.attempt },
  });
}
