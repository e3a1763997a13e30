import { Placeholder, type Query, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Executor } from "./handle.ts";

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
 * A hot statement: rendered to SQL text once at module load, so a call builds no query.
 * Parameters are `sql.placeholder(name)`s filled from `values`; rows come back raw (snake_case
 * keys, timestamps as text) and are mapped by the caller.
 *
 * How it is sent depends on the handle (`db.$runledger.prepare`). A postgres.js handle with
 * `prepare` (the default) sends it as a prepared statement: the first call on a connection
 * parses and describes it, later calls there only bind and execute, one round trip each.
 * postgres.js names the server-side statement itself; `name` only marks the statement as one to
 * prepare and names it for readers, tests and plans. A `pooled` handle (`prepare: false`) sends
 * it unnamed, parsed and described on every call (an extra round trip when it has parameters),
 * since a transaction-mode pooler keeps no prepared statement; PGlite runs it unnamed in process.
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
      const result = await sendPrepared(executor, rendered, name, withClock(values));
      return (Array.isArray(result) ? result : (result as { rows: Row[] }).rows) as Row[];
    },
  };
}

/*
 * The one place runledger goes past drizzle's documented API. drizzle-orm 0.45 prepares only what
 * its query builders build (`db.select()….prepare(name)`): `db.execute(sql)` always sends an
 * unprepared statement, and a transaction (`tx`) gives no access to its driver client
 * (drizzle-team/drizzle-orm#613, #5239). The builders' `.prepare(name)` calls the session's
 * `prepareQuery`, which drizzle's declarations type on every db and transaction (`_.session`)
 * without documenting it; given a name, the postgres.js session has postgres.js prepare the
 * statement, on the db's, the transaction's or the savepoint's connection as for the builders.
 * One object per call, as `db.execute` makes. test/store/statement.test.ts (and the PGlite smoke
 * test) fail if drizzle changes any of this.
 */
function sendPrepared(
  executor: Executor,
  query: Query,
  name: string,
  values: Record<string, unknown>,
): Promise<unknown> {
  return executor._.session.prepareQuery(query, undefined, name, false).execute(values);
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
 *
 * This is the one encoding for a batch of rows. The other jsonb parameters of the store are maps
 * keyed by job id, not rows: a lease fence and a success batch's extras (sql/jobs/fence.ts,
 * sql/jobs/complete.ts), which each updated row looks up by its own id, so the update stays on
 * primary-key lookups whatever the planner thinks of a joined relation.
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
