import type { Table } from "drizzle-orm";
/**
 * Raw rows from hot statements arrive as the driver gives them: timestamps as text (drizzle keeps
 * them unparsed over both postgres.js and PGlite; a `Date` is accepted too), int8 as text
 * (postgres.js) or number (PGlite), numeric as text, jsonb already parsed. These helpers make
 * them typed.
 */

/** Parse a timestamptz as PostgreSQL prints it (`2026-11-25 07:20:00.123456+00`) or as a Date. */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  const text = String(value);
  // V8 reads PostgreSQL's format directly, at less than half the cost of rewriting it to ISO 8601
  // first (claims parse seven timestamps per job); other engines may not, so keep the fallback.
  const direct = new Date(text);
  if (!Number.isNaN(direct.getTime())) return direct;
  const iso = text.includes("T") ? text : text.replace(" ", "T");
  return new Date(/[+-]\d\d$/.test(iso) ? `${iso}:00` : iso);
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** A JSON value for a jsonb parameter: hot statements take JSON text and cast it in SQL. */
export function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

/**
 * RFC 3339 UTC with exactly six fractional digits and `Z`, the precision of timestamptz; used in
 * idempotency snapshots so a retry compares equal to what was stored.
 */
export function microsecondTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}

// biome-ignore lint/suspicious/noExplicitAny: raw driver rows are untyped by nature.
export type RawRow = Record<string, any>;

/**
 * One page of a list read. Every list read of the store returns this shape: it takes `limit`
 * and an optional `after`, and `next` is the `after` of the following page.
 */
export interface Page<T, C> {
  items: T[];
  /** Pass as `after` for the next page; null on the last page. */
  next: C | null;
}

/** `camelCase` → `snake_case`, the schema's naming rule for columns (checked for every table by a test). */
export type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
  : S;

/** A value as a raw statement row carries it: timestamps as text (or a `Date`, over PGlite), the rest as typed. */
export type RawValue<V> = V extends Date ? string | Date : V;

/**
 * A row of `table` as a raw statement returns it (`select *`, `returning *`): the schema's columns
 * under their SQL names, typed from the Drizzle schema, so raw rows and the schema cannot drift.
 */
export type DbRow<T extends Table> = {
  [K in keyof T["$inferSelect"] as SnakeCase<K & string>]: RawValue<T["$inferSelect"][K]>;
};
