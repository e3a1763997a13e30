import { checkLabel, RunledgerError } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { toDate } from "../rows.ts";
import { fenceValues } from "../sql/jobs/fence.ts";
import { heartbeat, leaseHolder, progress, returnClaims } from "../sql/jobs/lease.ts";
import { checkTextSize, fail, isBlank, isDelayMs, isInt32, isStorableText, jsonText } from "../validate.ts";
import { checkLease, type LeaseIdentity, leaseLost } from "./lease-identity.ts";

/*
 * A held lease: heartbeats, progress, and returning claims never started. The statements are in
 * sql/jobs/lease.ts.
 */

/** A heartbeat: the lease to extend and its new length from now. */
export interface JobHeartbeat {
  lease: LeaseIdentity;
  leaseSeconds: number;
}

/** Many leases extended by the same length. */
export interface JobsHeartbeat {
  leases: readonly LeaseIdentity[];
  leaseSeconds: number;
}

/**
 * Extend many leases in one statement. Returns the new deadline of each lease still held;
 * leases lost (expired, canceled, taken over) are simply absent from the result.
 */
export async function heartbeatJobs(executor: Executor, input: JobsHeartbeat): Promise<Map<string, Date>> {
  const { leases, leaseSeconds } = input;
  if (!isInt32(leaseSeconds) || leaseSeconds <= 0) fail("job.invalid_lease_duration");
  if (leases.length === 0) return new Map();
  const values = { ...fenceValues(leases.map(checkLease)), leaseSeconds };
  const rows = await translating(() => heartbeat.run(executor, values));
  return new Map(rows.map((row) => [row.job_id, toDate(row.lease_expires_at)]));
}

/** Extend one lease; throws `job.lease_owner_mismatch` when it is no longer held. */
export async function heartbeatJob(executor: Executor, input: JobHeartbeat): Promise<{ leaseExpiresAt: Date }> {
  const lease = checkLease(input?.lease);
  const held = await heartbeatJobs(executor, { leases: [lease], leaseSeconds: input.leaseSeconds });
  const leaseExpiresAt = held.get(lease.jobId);
  if (leaseExpiresAt === undefined) throw leaseLost(lease);
  return { leaseExpiresAt };
}

/** What a handler reports while it runs. Absent fields keep their stored value. */
export interface JobProgressUpdate {
  stage?: string;
  progressDone?: number;
  progressTotal?: number;
  /** Resume state; survives retries within a run. */
  checkpoint?: unknown;
}

/** A progress write: the lease it is fenced by, and what the handler reports. */
export interface JobProgress extends JobProgressUpdate {
  lease: LeaseIdentity;
}

function checkCount(value: unknown, field: string): number | null {
  if (value === undefined) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) fail("job.invalid_progress", { field });
  return value;
}

/**
 * Record stage, progress and checkpoint for a held lease (one statement). Stage `running`
 * also persists the attempt's execution-start marker. Writes STAGE_CHANGED and PROGRESS events.
 */
export async function updateJobProgress(executor: Executor, update: JobProgress): Promise<void> {
  const lease = checkLease(update?.lease);
  if (update.stage !== undefined) checkLabel(update.stage, "stage", "job.invalid_progress");
  const done = checkCount(update.progressDone, "progressDone");
  const total = checkCount(update.progressTotal, "progressTotal");
  if (done !== null && total !== null && done > total) fail("job.invalid_progress", { field: "progressDone" });
  const hasCheckpoint = "checkpoint" in update && update.checkpoint !== undefined;
  const checkpoint = hasCheckpoint ? jsonText(update.checkpoint, "job.invalid_progress", "checkpoint") : null;
  const rows = await translating(() =>
    progress.run(executor, {
      ...fenceValues([lease]),
      stage: update.stage ?? null,
      done,
      total,
      hasCheckpoint,
      checkpoint,
      hasProgress: done !== null || total !== null,
    }),
  );
  if (rows.length === 0) throw leaseLost(lease);
}

/** A prestart claim to return: its lease, why, and how long until the job is due again. */
export interface UnstartedClaimRelease {
  lease: LeaseIdentity;
  reason: string;
  retryDelayMs?: number;
}

/** Claims to return at once, all for the same reason. */
export interface UnstartedClaimsReturn {
  leases: readonly LeaseIdentity[];
  reason: string;
}

/**
 * Return a prestart claim whose `running` marker was never persisted, without consuming an
 * attempt: the job row drops the attempt (its LEASED event stays in the log, the claim's audit
 * trail) and the job is PENDING again after `retryDelayMs`. Works on expired leases too
 * (expired-lease recovery uses it). `job.lease_owner_mismatch` when another worker holds the
 * job; `job.unstarted_claim_release_not_applicable` when the attempt already started.
 */
export async function releaseUnstartedJobClaim(executor: Executor, options: UnstartedClaimRelease): Promise<void> {
  const lease = checkLease(options?.lease);
  if (isBlank(options.reason) || !isStorableText(options.reason))
    fail("job.invalid_failure_report", { field: "reason" });
  checkTextSize(options.reason, "reason");
  const delay = Math.max(0, options.retryDelayMs ?? 0);
  if (!isDelayMs(delay)) fail("job.invalid_retry_delay");
  await translating(async () => {
    const rows = await returnClaims.run(executor, {
      ...fenceValues([lease]),
      delayMs: delay,
      reason: options.reason,
      requirePrestart: true,
    });
    if (rows.length > 0) return;
    const [holder] = await leaseHolder.run(executor, { id: lease.jobId });
    if (holder?.status === "LEASED" && holder.worker_id !== lease.workerId) throw leaseLost(lease);
    throw new RunledgerError("job.unstarted_claim_release_not_applicable", { details: { jobId: lease.jobId } });
  });
}

/**
 * Return claims a worker took but never handed to a handler (its local queue at shutdown):
 * the jobs are PENDING again at once, the attempts are not counted (the job rows drop them; their
 * LEASED events stay in the log), and a REQUEUED event records `reason`. Leases no longer held
 * are skipped. Returns the ids of the jobs returned.
 */
export async function returnUnstartedClaims(executor: Executor, options: UnstartedClaimsReturn): Promise<string[]> {
  const { leases } = options;
  if (leases.length === 0) return [];
  if (isBlank(options.reason) || !isStorableText(options.reason))
    fail("job.invalid_failure_report", { field: "reason" });
  checkTextSize(options.reason, "reason");
  const values = { ...fenceValues(leases.map(checkLease)), delayMs: 0, reason: options.reason, requirePrestart: false };
  const rows = await translating(() => returnClaims.run(executor, values));
  return rows.map((row) => row.id);
}
