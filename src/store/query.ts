import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Executor } from "./db.ts";

const dialect = new PgDialect();

/** Rows of an ad-hoc `sql` query, whichever driver is underneath (postgres.js returns an array, PGlite `{ rows }`). */
export async function queryRows<T>(executor: Executor, query: SQL): Promise<T[]> {
  const result = (await executor.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * A hot statement: rendered to SQL text once at module load and sent as a named prepared
 * statement, so each call is one round trip with no query building. Parameters are
 * `sql.placeholder(name)`s filled from `values`; rows come back raw (snake_case keys,
 * timestamps as text) and are mapped by the caller.
 */
export interface Statement<Row> {
  readonly name: string;
  readonly text: string;
  run(executor: Executor, values: Record<string, unknown>): Promise<Row[]>;
}

export function statement<Row = Record<string, unknown>>(name: string, query: SQL): Statement<Row> {
  const rendered = dialect.sqlToQuery(query);
  return {
    name,
    text: rendered.sql,
    async run(executor, values) {
      const prepared = executor._.session.prepareQuery(rendered, undefined, name, false);
      const result = (await prepared.execute(values)) as unknown;
      return (Array.isArray(result) ? result : (result as { rows: Row[] }).rows) as Row[];
    },
  };
}
