import { type SQL, sql } from "drizzle-orm";
import { statement } from "../query.ts";
import type { DbRow } from "../rows.ts";
import { jobRuntimeConfigs } from "../schema/index.ts";

/* Runtime configs' statements (src/store/runtime-configs.ts): one row per job type. */

export type RuntimeConfigRow = DbRow<typeof jobRuntimeConfigs>;

const insert = sql`insert into ${jobRuntimeConfigs} as c (job_type, schema_version, config, updated_by_user_id)
  values (${sql.placeholder("jobType")}, ${sql.placeholder("schemaVersion")}, ${sql.placeholder("config")}::jsonb,
    ${sql.placeholder("updatedByUserId")})`;

/** Insert or replace a job type's config (`config`: JSON text). */
export const runtimeConfigUpsert = statement<RuntimeConfigRow>(
  "runledger_runtime_config_upsert",
  sql`${insert}
    on conflict (job_type) do update set schema_version = excluded.schema_version, config = excluded.config,
      updated_by_user_id = excluded.updated_by_user_id
    returning *`,
);

/** Insert a job type's config unless it has one (no row then). */
export const runtimeConfigInsertIfMissing = statement<RuntimeConfigRow>(
  "runledger_runtime_config_insert_if_missing",
  sql`${insert}
    on conflict (job_type) do nothing
    returning *`,
);

export const runtimeConfigGet = statement<RuntimeConfigRow>(
  "runledger_runtime_config_get",
  sql`select * from ${jobRuntimeConfigs} where job_type = ${sql.placeholder("jobType")}`,
);

/** A page of configs by job type (keyset on it), of one type when given; one row more than `limit` says there is a next page. */
export function runtimeConfigList(filter: { jobType?: string; after?: string; limit: number }): SQL {
  return sql`select * from ${jobRuntimeConfigs} where true
    ${filter.jobType === undefined ? sql`` : sql`and job_type = ${filter.jobType}`}
    ${filter.after === undefined ? sql`` : sql`and job_type > ${filter.after}`}
    order by job_type limit ${filter.limit + 1}`;
}
