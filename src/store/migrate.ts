import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { SchemaCompatibilityError, type SchemaState } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { toQueryError } from "./errors.ts";
import { queryRows } from "./query.ts";

/** Where the journal lives; shared with `drizzle-kit migrate` through drizzle.config.ts. */
export const MIGRATIONS_SCHEMA = "runledger";
export const MIGRATIONS_TABLE = "__drizzle_migrations";

/** The bundled `drizzle/` folder, found the same way from `src/` and from `dist/`. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

// "runlmigr" as a 64-bit key, fixed so every version of the package takes the same lock.
const MIGRATION_LOCK = sql.raw("8247619704570079090");

interface BundledMigration {
  hash: string;
  folderMillis: number;
  sql: string[];
}

interface AppliedMigration {
  id: number;
  hash: string;
  createdAt: number;
}

/** What `inspectSchema` found: the state and how far the two histories agree. */
export interface SchemaReport {
  state: SchemaState;
  /** Migrations this package ships. */
  bundled: number;
  /** Rows in the database's journal. */
  applied: number;
  /** Bundled migrations not yet applied (state `behind` or `uninitialized`). */
  pending: number;
}

function bundledMigrations(): BundledMigration[] {
  return readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
}

function compare(bundled: BundledMigration[], applied: AppliedMigration[] | null): SchemaReport {
  if (applied === null) return { state: "uninitialized", bundled: bundled.length, applied: 0, pending: bundled.length };
  const agreeing = applied.findIndex((row, i) => {
    const mine = bundled[i];
    return mine === undefined || mine.hash !== row.hash || mine.folderMillis !== row.createdAt;
  });
  const prefix = agreeing === -1 ? applied.length : agreeing;
  const report = { bundled: bundled.length, applied: applied.length, pending: bundled.length - applied.length };
  if (prefix < applied.length) {
    return { ...report, state: prefix < bundled.length ? "diverged" : "ahead", pending: 0 };
  }
  if (applied.length === 0) return { ...report, state: "uninitialized" };
  return { ...report, state: applied.length < bundled.length ? "behind" : "current" };
}

async function readJournal(executor: Executor): Promise<AppliedMigration[] | null> {
  const exists = await queryRows<{ regclass: string | null }>(
    executor,
    sql`select to_regclass(${`${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`})::text as regclass`,
  );
  if (exists[0]?.regclass == null) return null;
  const rows = await queryRows<{ id: number; hash: string; created_at: string | number | null }>(
    executor,
    sql`select id, hash, created_at from ${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)} order by id`,
  );
  return rows.map((row) => ({ id: Number(row.id), hash: row.hash, createdAt: Number(row.created_at) }));
}

/** Compare the database's migration journal with the bundled migrations. Read-only; never throws for a state. */
export async function inspectSchema(executor: Executor): Promise<SchemaReport> {
  try {
    const applied = await executor.transaction(async (tx) => readJournal(tx), { accessMode: "read only" });
    return compare(bundledMigrations(), applied);
  } catch (error) {
    throw toQueryError(error);
  }
}

/**
 * Check, without running any DDL, that the database has exactly the migrations this package
 * ships. Throws a `SchemaCompatibilityError` (`schema.uninitialized`, `schema.behind`,
 * `schema.ahead`, `schema.diverged`) otherwise. Worker processes call this instead of `migrate`.
 */
export async function ensureSchemaCompatible(executor: Executor): Promise<SchemaReport> {
  const report = await inspectSchema(executor);
  if (report.state !== "current") {
    throw new SchemaCompatibilityError(report.state, {
      details: { bundled: report.bundled, applied: report.applied, pending: report.pending },
    });
  }
  return report;
}

/**
 * Apply the bundled migrations. Safe to call from many processes at once: the work runs in one
 * transaction under an advisory lock, so latecomers wait and then find nothing to do. Refuses a
 * database whose history is `ahead` of or `diverged` from this package.
 */
export async function migrate(executor: Executor): Promise<SchemaReport> {
  const bundled = bundledMigrations();
  try {
    return await executor.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await tx.execute(sql`create schema if not exists ${sql.identifier(MIGRATIONS_SCHEMA)}`);
      await tx.execute(
        sql`create table if not exists ${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)} (id serial primary key, hash text not null, created_at bigint)`,
      );
      const applied = (await readJournal(tx)) ?? [];
      const before = compare(bundled, applied);
      if (before.state === "ahead" || before.state === "diverged") {
        throw new SchemaCompatibilityError(before.state, {
          details: { bundled: before.bundled, applied: before.applied },
        });
      }
      for (const migration of bundled.slice(applied.length)) {
        for (const statement of migration.sql) {
          if (statement.trim() !== "") await tx.execute(sql.raw(statement));
        }
        await tx.execute(
          sql`insert into ${sql.identifier(MIGRATIONS_SCHEMA)}.${sql.identifier(MIGRATIONS_TABLE)} (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
        );
      }
      return { state: "current" as const, bundled: bundled.length, applied: bundled.length, pending: 0 };
    });
  } catch (error) {
    if (error instanceof SchemaCompatibilityError) throw error;
    throw toQueryError(error, "schema.migration_failed");
  }
}
