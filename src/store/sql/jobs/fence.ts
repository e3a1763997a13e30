import { sql } from "drizzle-orm";

/**
 * The lease fence every worker write carries, over a job row aliased `j`: the row is one of the
 * leases' jobs and matches its lease's run, attempt and worker. Parameter `fence` is a jsonb map
 * id → "run:attempt" and `worker` the one worker of all the leases; leases of several workers
 * (only API callers do that) carry theirs in the map instead ("run:attempt:worker") and `worker`
 * is null. The map's keys drive primary-key lookups whatever the planner's statistics; a join
 * with the leases as a relation did not (see complete.ts). Sent once, the map is most of what a
 * batch costs on the wire: ~50 bytes a job.
 */
export const fenced = sql`j.id = any(array(select jsonb_object_keys(${sql.placeholder("fence")}::jsonb)::uuid))
    and ${sql.placeholder("fence")}::jsonb ->> j.id::text = j.run_number || ':' || j.attempt
      || case when ${sql.placeholder("worker")}::text is null then ':' || j.worker_id else '' end
    and j.worker_id = coalesce(${sql.placeholder("worker")}::text, j.worker_id)`;

/**
 * A lease still held: LEASED and not run out by the database's wall clock (`clock_timestamp()`,
 * not a caller's `now`: a fence guards real time). There is no grace period after expiry, even
 * if nobody else has taken the job.
 */
export const liveLease = sql.raw(`j.status = 'LEASED' and j.lease_expires_at > clock_timestamp()`);

/** What the fence matches of a lease (a `LeaseIdentity`, which jobs/ checks before it gets here). */
interface FencedLease {
  jobId: string;
  runNumber: number;
  attempt: number;
  workerId: string;
}

/** The `fence` and `worker` parameters of `fenced` for these leases. */
export function fenceValues(leases: readonly FencedLease[]): { fence: string; worker: string | null } {
  const worker = leases[0]?.workerId;
  const shared = leases.every((lease) => lease.workerId === worker);
  const entries = new Array<string>(leases.length);
  for (let i = 0; i < leases.length; i++) {
    const lease = leases[i]!;
    // Checked uuids (the database prints them in lower case) and integers need no escaping.
    const key = `"${lease.jobId.toLowerCase()}":"${lease.runNumber}:${lease.attempt}`;
    entries[i] = shared ? `${key}"` : `${key}:${JSON.stringify(lease.workerId).slice(1)}`;
  }
  return { fence: `{${entries.join(",")}}`, worker: shared ? (worker ?? null) : null };
}
