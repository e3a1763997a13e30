import { sql } from "drizzle-orm";
import { checkJobType, RunledgerError } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { toQueryError } from "./errors.ts";

import { queryRows } from "./query.ts";
import { type Page, type RawRow, toDate } from "./rows.ts";
import { jobRuntimeConfigs } from "./schema/index.ts";
import { checkLimit, fail, isInt32, isUuid, jsonText } from "./validate.ts";

/** Per-job-type operator configuration, versioned by `schemaVersion`. The runtime never reads it. */
export interface JobRuntimeConfigRecord {
  jobType: string;
  schemaVersion: number;
  config: Record<string, unknown>;
  updatedByUserId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface JobRuntimeConfigUpsert {
  jobType: string;
  schemaVersion: number;
  config: Record<string, unknown>;
  updatedByUserId?: string | null;
}

function configFromRow(row: RawRow): JobRuntimeConfigRecord {
  return {
    jobType: row.job_type,
    schemaVersion: Number(row.schema_version),
    config: row.config,
    updatedByUserId: row.updated_by_user_id ?? null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

function check(input: JobRuntimeConfigUpsert): string {
  checkJobType(input.jobType);
  if (!isInt32(input.schemaVersion) || input.schemaVersion <= 0)
    fail("job.invalid_runtime_config", { field: "schemaVersion" });
  if (input.config === null || typeof input.config !== "object" || Array.isArray(input.config)) {
    fail("job.invalid_runtime_config", { field: "config" });
  }
  if (input.updatedByUserId != null && !isUuid(input.updatedByUserId))
    fail("job.invalid_runtime_config", { field: "updatedByUserId" });
  return jsonText(input.config, "job.invalid_runtime_config", "config");
}

async function write(
  executor: Executor,
  input: JobRuntimeConfigUpsert,
  overwrite: boolean,
): Promise<JobRuntimeConfigRecord | null> {
  const config = check(input);
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`insert into ${jobRuntimeConfigs} as c (job_type, schema_version, config, updated_by_user_id)
        values (${input.jobType}, ${input.schemaVersion}, ${config}::jsonb, ${input.updatedByUserId ?? null})
        ${
          overwrite
            ? sql`on conflict (job_type) do update set schema_version = excluded.schema_version, config = excluded.config,
                updated_by_user_id = excluded.updated_by_user_id`
            : sql`on conflict (job_type) do nothing`
        }
        returning *`,
    );
    return row === undefined ? null : configFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** Insert or replace a job type's runtime config. `job.definition_not_found` for an unknown type. */
export async function upsertJobRuntimeConfig(
  executor: Executor,
  input: JobRuntimeConfigUpsert,
): Promise<JobRuntimeConfigRecord> {
  return (await write(executor, input, true))!;
}

/** Insert a runtime config unless one exists; returns the existing one then. */
export async function insertJobRuntimeConfigIfMissing(
  executor: Executor,
  input: JobRuntimeConfigUpsert,
): Promise<JobRuntimeConfigRecord> {
  return (await write(executor, input, false)) ?? (await getRequiredJobRuntimeConfig(executor, input.jobType));
}

/** A job type's runtime config, or null. */
export async function getJobRuntimeConfig(executor: Executor, jobType: string): Promise<JobRuntimeConfigRecord | null> {
  try {
    const [row] = await queryRows<RawRow>(
      executor,
      sql`select * from ${jobRuntimeConfigs} where job_type = ${jobType}`,
    );
    return row === undefined ? null : configFromRow(row);
  } catch (error) {
    throw toQueryError(error);
  }
}

/** A job type's runtime config; `job.runtime_config_not_found` when there is none. */
export async function getRequiredJobRuntimeConfig(
  executor: Executor,
  jobType: string,
): Promise<JobRuntimeConfigRecord> {
  const config = await getJobRuntimeConfig(executor, jobType);
  if (config === null) throw new RunledgerError("job.runtime_config_not_found", { details: { jobType } });
  return config;
}

/** Runtime configs by job type (optionally one), a page at a time (`after`: the last job type seen). */
export async function listJobRuntimeConfigs(
  executor: Executor,
  filter: { jobType?: string; limit: number; after?: string },
): Promise<Page<JobRuntimeConfigRecord, string>> {
  checkLimit(filter.limit);
  try {
    const rows = await queryRows<RawRow>(
      executor,
      sql`select * from ${jobRuntimeConfigs} where true
        ${filter.jobType === undefined ? sql`` : sql`and job_type = ${filter.jobType}`}
        ${filter.after === undefined ? sql`` : sql`and job_type > ${filter.after}`}
        order by job_type limit ${filter.limit + 1}`,
    );
    const items = rows.slice(0, filter.limit).map(configFromRow);
    return { items, next: rows.length > filter.limit ? items.at(-1)!.jobType : null };
  } catch (error) {
    throw toQueryError(error);
  }
}
