import { type SQL, sql } from "drizzle-orm";

/*
 * The migration journal's statements (src/store/migrate.ts). Plain `SQL`, not prepared
 * statements: they run a few times per deploy, around DDL, and a prepared statement kept on a
 * pooled connection would only outlive the schema it was planned against.
 */

/** Where the journal lives; shared with `drizzle-kit migrate` through drizzle.config.ts. */
export const MIGRATIONS_SCHEMA = "runledger";
export const MIGRATIONS_TABLE = "__drizzle_migrations";

const journal = sql`${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)}`;

// "runlmigr" as a 64-bit key, fixed so every version of the package takes the same lock.
const MIGRATION_LOCK = sql.raw("8247619704570079090");

/** Serializes migrations across processes, until the transaction ends. */
export const migrationLock: SQL = sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;

export const journalSchemaCreate: SQL = sql`create schema if not exists ${sql.identifier(MIGRATIONS_SCHEMA)}`;

/** drizzle-kit's journal shape, so `drizzle-kit migrate` and `migrate` share it. */
export const journalTableCreate: SQL = sql`create table if not exists ${journal} (id serial primary key, hash text not null, created_at bigint)`;

/** The journal's name if it exists (`regclass` null otherwise). */
export const journalExists: SQL = sql`select to_regclass(${`${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`})::text as regclass`;

export const journalRows: SQL = sql`select id, hash, created_at from ${journal} order by id`;

/** Record a migration as applied: its file's sha256 and its `when` in the drizzle journal. */
export function journalInsert(hash: string, createdAt: number): SQL {
  return sql`insert into ${journal} (hash, created_at) values (${hash}, ${createdAt})`;
}
