import { sql } from "drizzle-orm";
import type { OrganizationScope } from "../../core/index.ts";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { jobQueue } from "../schema/index.ts";
import { idempotencyScopeCondition, scopeCondition } from "../scope.ts";
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
  const keyed = idempotencyScopeCondition(sql`organization_id`, input?.scope);
  if (!matchable(input.jobType) || !matchable(input.idempotencyKey)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select id, payload from ${jobQueue}
        where job_type = ${input.jobType} and idempotency_key = ${input.idempotencyKey} and ${keyed}`,
    );
    return row === undefined ? null : { id: row.id, payload: row.payload };
  } catch (error) {
    throw toQueryError(error);
  }
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
  const visible = scopeCondition(sql`organization_id`, input?.scope);
  if (!matchable(input.jobType) || !isUuid(input.runId)) return null;
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select id, payload from ${jobQueue}
        where job_type = ${input.jobType} and lower(payload ->> 'run_id') = ${input.runId.toLowerCase()} and ${visible}
        order by created_at desc, id desc
        limit 1`,
    );
    return row === undefined ? null : { id: row.id, payload: row.payload };
  } catch (error) {
    throw toQueryError(error);
  }
}
