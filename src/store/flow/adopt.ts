import { type SQL, sql } from "drizzle-orm";
import type { Executor } from "../db.ts";
import { flowSlots, jobDefinitions, jobQueue } from "../schema/index.ts";

/*
 * A new concurrency limit counts the jobs already running in its scope: they get a slot, as if
 * they had been claimed under it. (Scopes are spelled as `JSON.stringify` spells them in
 * scopes.ts.) Without this, a limit set while jobs run would admit `limit` more.
 */

/** Give running jobs matching `match` a slot in each of `scopes` (a list of nullable text expressions). */
export async function adoptRunning(tx: Executor, match: SQL, scopes: SQL): Promise<void> {
  await tx.execute(sql`insert into ${flowSlots} (scope, job_id)
    select s.scope, j.id from ${jobQueue} j
    left join ${jobDefinitions} d on d.job_type = j.job_type
    cross join lateral unnest(array[${scopes}]) as s(scope)
    where j.finished_at is null and j.status = 'LEASED' and ${match} and s.scope is not null
    on conflict do nothing`);
}

/** `adoptRunning` for the limits the definitions of `jobTypes` hold now (per type and per key). */
export async function adoptRunningOfTypes(tx: Executor, jobTypes: readonly string[]): Promise<void> {
  if (jobTypes.length === 0) return;
  await adoptRunning(
    tx,
    sql`j.job_type = any(${sql.param([...jobTypes])}::text[])`,
    sql`case when d.max_concurrency is not null then '["t",' || to_json(j.job_type)::text || ']' end,
        case when d.max_concurrency_per_key is not null and j.concurrency_key is not null
          then '["tk",' || to_json(j.job_type)::text || ',' || to_json(j.concurrency_key)::text || ']' end`,
  );
}
