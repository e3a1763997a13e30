import type { OrganizationScope } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { translating } from "../errors.ts";
import { queryRows } from "../query.ts";
import {
  idempotencyScope,
  type JobPayloadRow,
  jobByIdempotencyKey,
  jobScope,
  latestJobForRun,
} from "../sql/jobs/reads.ts";
import { isUuid, matchable } from "../validate.ts";

/** A job's id and payload. */
export interface JobPayloadRecord {
  id: string;
  payload: unknown;
}

/**
 * The job enqueued under an idempotency key, or null. Keys are unique per job type within an
 * organization: `scope` names which organization's key (`ALL_ORGANIZATIONS`: the key of jobs
 * enqueued without an organization, the scope `enqueueJob` gave it).
 */
export async function getJobPayloadByIdempotencyKey(
  executor: Executor,
  input: { scope: OrganizationScope; jobType: string; idempotencyKey: string },
): Promise<JobPayloadRecord | null> {
  const keyed = idempotencyScope(input?.scope);
  if (!matchable(input.jobType) || !matchable(input.idempotencyKey)) return null;
  const [row] = await translating(() =>
    queryRows<JobPayloadRow>(executor, jobByIdempotencyKey(input.jobType, input.idempotencyKey, keyed)),
  );
  return row === undefined ? null : payloadFromRow(row);
}

/**
 * The newest job of `jobType` whose payload's top-level `run_id` is `runId` (the seed's
 * convention for jobs that belong to an application-level run), or null. Not indexed: it reads
 * the type's jobs in the scope, so keep it to admin and recovery paths.
 */
export async function getLatestJobPayloadForRun(
  executor: Executor,
  input: { scope: OrganizationScope; jobType: string; runId: string },
): Promise<JobPayloadRecord | null> {
  const visible = jobScope(input?.scope);
  if (!matchable(input.jobType) || !isUuid(input.runId)) return null;
  const [row] = await translating(() =>
    queryRows<JobPayloadRow>(executor, latestJobForRun(input.jobType, input.runId, visible)),
  );
  return row === undefined ? null : payloadFromRow(row);
}

function payloadFromRow(row: JobPayloadRow): JobPayloadRecord {
  return { id: row.id, payload: row.payload };
}
