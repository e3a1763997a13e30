import { sql } from "drizzle-orm";
import { RunledgerError } from "../../core/index.ts";
import { fail, isBlank, isInt32, isUuid } from "../validate.ts";
import type { LeaseIdentity } from "./record.ts";

/**
 * The lease fence every worker write carries, over a job row aliased `j`: the row is one of the
 * `ids` and matches its lease's run, attempt and worker (a jsonb map id → "run:attempt:worker",
 * parameter `fence`). The ids drive primary-key lookups whatever the planner's statistics; a join
 * with the leases as a relation did not (see complete.ts).
 */
export const fenced = sql`j.id = any(${sql.placeholder("ids")}::uuid[])
    and ${sql.placeholder("fence")}::jsonb ->> j.id::text = j.run_number || ':' || j.attempt || ':' || j.worker_id`;

/**
 * A lease still held: LEASED and not run out by the database clock. There is no grace period
 * after expiry, even if nobody else has taken the job.
 */
export const liveLease = sql.raw(`j.status = 'LEASED' and j.lease_expires_at > clock_timestamp()`);

/** The `ids` and `fence` parameters of `fenced` for these leases. */
export function fenceValues(leases: readonly LeaseIdentity[]): { ids: string[]; fence: string } {
  const ids = new Array<string>(leases.length);
  const fence: Record<string, string> = {};
  for (let i = 0; i < leases.length; i++) {
    const lease = leases[i]!;
    // The database prints uuids in lower case.
    const id = lease.jobId.toLowerCase();
    ids[i] = id;
    fence[id] = `${lease.runNumber}:${lease.attempt}:${lease.workerId}`;
  }
  return { ids, fence: JSON.stringify(fence) };
}

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

export function leaseLost(lease: LeaseIdentity): RunledgerError {
  return new RunledgerError("job.lease_owner_mismatch", {
    details: { jobId: lease.jobId, runNumber: lease.runNumber, attempt: lease.attempt },
  });
}
