import { Placeholder, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Executor } from "./db.ts";

const dialect = new PgDialect();

/** Rows of an ad-hoc `sql` query, whichever driver is underneath (postgres.js returns an array, PGlite `{ rows }`). */
export async function queryRows<T>(executor: Executor, query: SQL): Promise<T[]> {
  const result = (await executor.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * The time a statement acts at: the `now` value its caller passes (a test, a replay), else the
 * server's transaction time. Statements whose decisions depend on time (due, expired, old enough)
 * say `${clockNow}` where they would say `now()`; `statement().run` sends null for a `now` the
 * values leave out, so production callers never pass one.
 */
export const clockNow: SQL = sql`coalesce(${sql.placeholder("now")}::timestamptz, now())`;

/** `clockNow` for an ad-hoc query built per call: the given time as a parameter, or `now()`. */
export function clockAt(now: Date | undefined): SQL {
  return now === undefined ? sql`now()` : sql`${now.toISOString()}::timestamptz`;
}

function clockValue(now: unknown): string | null {
  return now instanceof Date ? now.toISOString() : ((now as string | null | undefined) ?? null);
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
  /** The positional parameters (`$1`, `$2`, …) of `text` for these values (plans, diagnostics). */
  bind(values: Record<string, unknown>): unknown[];
  run(executor: Executor, values: Record<string, unknown>): Promise<Row[]>;
}

export function statement<Row = Record<string, unknown>>(name: string, query: SQL): Statement<Row> {
  const rendered = dialect.sqlToQuery(query);
  const clocked = rendered.params.some((param) => param instanceof Placeholder && param.name === "now");
  const withClock = (values: Record<string, unknown>) =>
    clocked ? { ...values, now: clockValue(values.now) } : values;
  return {
    name,
    text: rendered.sql,
    bind: (values) => {
      const filled = withClock(values);
      return rendered.params.map((param) => (param instanceof Placeholder ? filled[param.name] : param));
    },
    async run(executor, values) {
      const prepared = executor._.session.prepareQuery(rendered, undefined, name, false);
      const result = (await prepared.execute(withClock(values))) as unknown;
      return (Array.isArray(result) ? result : (result as { rows: Row[] }).rows) as Row[];
    },
  };
}

/**
 * Rows as one PostgreSQL array literal per column, for `unnest($1::uuid[], $2::text[], …)`.
 * For the server that is much cheaper than a jsonb document of row objects (a 1,000-job batch
 * spent ~4.5 ms parsing one). Literals are built here rather than by the driver, so they work
 * whatever array types the client knows (postgres.js without `fetch_types`, PGlite). A column
 * null throughout goes as one null, which unnest pads with nulls. `jsonColumns` hold JSON texts
 * as `JSON.stringify` writes them (no raw control characters), which `JSON.stringify` quotes
 * exactly as an array element needs, natively: building a 1,000-job batch's literals took
 * ~0.9 ms with a regular expression per element, ~0.3 ms this way.
 */
export function columnParams<Row, const Columns extends Record<string, keyof Row>>(
  rows: readonly Row[],
  columns: Columns,
  jsonColumns: readonly (keyof Columns)[] = [],
): Record<keyof Columns, string | null> {
  const params = {} as Record<keyof Columns, string | null>;
  for (const name in columns) {
    const key = columns[name] as keyof Row;
    const quote = jsonColumns.includes(name) ? quoteJson : quoteText;
    const parts = new Array<string>(rows.length);
    let allNull = true;
    for (let i = 0; i < rows.length; i++) {
      const value = rows[i]![key] as unknown;
      if (value === null || value === undefined) parts[i] = "NULL";
      else {
        allNull = false;
        parts[i] = quote(String(value));
      }
    }
    params[name] = allNull ? null : `{${parts.join(",")}}`;
  }
  return params;
}

/**
 * One text array as a PostgreSQL array literal, for a `$n::text[]` parameter. Sent as text, it
 * does not depend on the type the driver learned for the parameter: an unprepared statement
 * through a transaction-mode pooler may be described on one server connection and run on another.
 */
export function textArrayLiteral(values: readonly string[]): string {
  return `{${values.map(quoteText).join(",")}}`;
}

const quoteJson = (text: string) => JSON.stringify(text);

const quoteText = (text: string) =>
  text.includes('"') || text.includes("\\") ? `"${text.replace(ARRAY_ESCAPE, "\\$&")}"` : `"${text}"`;

const ARRAY_ESCAPE = /[\\"]/g;
