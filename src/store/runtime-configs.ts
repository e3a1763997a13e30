import { checkJobType, RunledgerError } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { translating } from "./errors.ts";
import { queryRows } from "./query.ts";
import { type Page, toDate } from "./rows.ts";
import {
  type RuntimeConfigRow,
  runtimeConfigGet,
  runtimeConfigInsertIfMissing,
  runtimeConfigList,
  runtimeConfigUpsert,
} from "./sql/runtime-configs.ts";
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

function configFromRow(row: RuntimeConfigRow): JobRuntimeConfigRecord {
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
  const statement = overwrite ? runtimeConfigUpsert : runtimeConfigInsertIfMissing;
  return translating(async () => {
    const [row] = await statement.run(executor, {
      jobType: input.jobType,
      schemaVersion: input.schemaVersion,
      config,
      updatedByUserId: input.updatedByUserId ?? null,
    });
    return row === undefined ? null : configFromRow(row);
  });
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
  return translating(async () => {
    const [row] = await runtimeConfigGet.run(executor, { jobType });
    return row === undefined ? null : configFromRow(row);
  });
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
  return translating(async () => {
    const rows = await queryRows<RuntimeConfigRow>(
      executor,
      runtimeConfigList({ jobType: filter.jobType, after: filter.after, limit: filter.limit }),
    );
    const items = rows.slice(0, filter.limit).map(configFromRow);
    return { items, next: rows.length > filter.limit ? items.at(-1)!.jobType : null };
  });
}
