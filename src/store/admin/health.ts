import { sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { toQueryError } from "../errors.ts";
import { queryRows } from "../query.ts";
import type { RawRow } from "../rows.ts";
import { toDateOrNull } from "../rows.ts";
import { jobDefinitions, jobQueue, jobSchedules } from "../schema/index.ts";
import { fail } from "../validate.ts";

/*
 * Whole-system health checks for `runledger doctor`: read-only, bounded, and about the system
 * rather than one tenant's data (they return figures and job types, never another
 * organization's rows).
 */

/** The server the executor is connected to. */
export interface ServerInfo {
  /** `server_version`, such as `15.18`. */
  version: string;
  /** `server_version_num`, such as 150018. */
  versionNum: number;
  database: string;
}

/** Which PostgreSQL server and database the executor talks to (one round trip). */
export async function getServerInfo(executor: Executor): Promise<ServerInfo> {
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select current_setting('server_version') as version,
        current_setting('server_version_num')::int as version_num, current_database() as database`,
    );
    return { version: row!.version, versionNum: Number(row!.version_num), database: row!.database };
  } catch (error) {
    throw toQueryError(error);
  }
}

/** A disabled job definition that work still refers to. */
export interface DisabledDefinitionInUse {
  jobType: string;
  /** Its pending and leased jobs (counted up to 10,000). */
  unfinishedJobs: number;
  /** Its active schedules, which keep firing jobs that cannot be enqueued. */
  activeSchedules: number;
}

/**
 * Disabled job definitions that still have unfinished jobs or active schedules: work that waits
 * for a type nobody may enqueue any more, or a schedule that fails at every slot.
 */
export async function listDisabledDefinitionsInUse(executor: Executor): Promise<DisabledDefinitionInUse[]> {
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select d.job_type,
          (select count(*) from (select 1 from ${jobQueue} j
            where j.job_type = d.job_type and j.finished_at is null limit 10000) u)::int as unfinished,
          (select count(*) from ${jobSchedules} s where s.job_type = d.job_type and s.is_active)::int as schedules
        from ${jobDefinitions} d
        where not d.is_enabled
        order by d.job_type`,
    );
    return rows
      .map((row) => ({
        jobType: row.job_type as string,
        unfinishedJobs: Number(row.unfinished),
        activeSchedules: Number(row.schedules),
      }))
      .filter((row) => row.unfinishedJobs > 0 || row.activeSchedules > 0);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Leases that expired and were not yet reaped. */
export interface StuckLeases {
  /** Leased jobs whose lease expired more than `graceSeconds` ago (counted up to 10,000). */
  count: number;
  /** The oldest such expiry, or null. */
  oldestExpiredAt: Date | null;
}

/**
 * Leased jobs whose lease expired more than `graceSeconds` (default 300) ago: the reaper should
 * have retried or dead-lettered them, so either no reaper runs or it is failing. Reads the
 * unfinished jobs only (the claim index's rows).
 */
export async function findStuckLeases(
  executor: Executor,
  options: { graceSeconds?: number } = {},
): Promise<StuckLeases> {
  const grace = options.graceSeconds ?? 300;
  if (!Number.isInteger(grace) || grace < 0 || grace > 7 * 86_400)
    fail("job.invalid_pagination", { field: "graceSeconds" });
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select count(*)::int as n, min(lease_expires_at) as oldest from (
          select lease_expires_at from ${jobQueue}
          where finished_at is null and status = 'LEASED'
            and lease_expires_at < now() - make_interval(secs => ${grace})
          limit 10000) s`,
    );
    return { count: Number(row!.n), oldestExpiredAt: toDateOrNull(row!.oldest) };
  } catch (error) {
    throw toQueryError(error);
  }
}
