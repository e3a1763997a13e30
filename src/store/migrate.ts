import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { SchemaCompatibilityError, type SchemaState } from "../core/index.ts";
import type { Executor } from "./db.ts";
import { translating } from "./errors.ts";
import { queryRows } from "./query.ts";
import {
  journalExists,
  journalInsert,
  journalRows,
  journalSchemaCreate,
  journalTableCreate,
  MIGRATIONS_SCHEMA,
  MIGRATIONS_TABLE,
  migrationLock,
} from "./sql/migrate.ts";

export { MIGRATIONS_SCHEMA, MIGRATIONS_TABLE };

/** The bundled `drizzle/` folder, found the same way from `src/` and from `dist/`. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

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

/** A row of the database's journal that matches none of the migrations this package ships. */
export interface ForeignMigration {
  /** The row's `id` in `runledger.__drizzle_migrations`. */
  id: number;
  /** sha256 of the migration file that was applied. */
  hash: string;
  /** The `when` of that migration in its drizzle journal (`meta/_journal.json`), in epoch ms. */
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
  /**
   * Journal rows that are not runledger's (state `diverged` or `ahead`): an application's own
   * migrations applied into runledger's journal, or a newer runledger's.
   */
  foreign: ForeignMigration[];
}

function bundledMigrations(): BundledMigration[] {
  return readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
}

function compare(bundled: BundledMigration[], applied: AppliedMigration[] | null): SchemaReport {
  if (applied === null) {
    return { state: "uninitialized", bundled: bundled.length, applied: 0, pending: bundled.length, foreign: [] };
  }
  const agreeing = applied.findIndex((row, i) => {
    const mine = bundled[i];
    return mine === undefined || mine.hash !== row.hash || mine.folderMillis !== row.createdAt;
  });
  const prefix = agreeing === -1 ? applied.length : agreeing;
  const report = {
    bundled: bundled.length,
    applied: applied.length,
    pending: bundled.length - applied.length,
    foreign: [],
  };
  if (prefix < applied.length) {
    const ours = new Set(bundled.map((m) => m.hash));
    const foreign = applied.filter((row) => !ours.has(row.hash));
    return { ...report, state: prefix < bundled.length ? "diverged" : "ahead", pending: 0, foreign };
  }
  if (applied.length === 0) return { ...report, state: "uninitialized" };
  return { ...report, state: applied.length < bundled.length ? "behind" : "current" };
}

const JOURNAL = `${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`;

/** The error for a report that is not `current`, naming foreign journal rows when there are any. */
function incompatible(report: SchemaReport): SchemaCompatibilityError {
  const state = report.state as Exclude<SchemaState, "current">;
  const details: Record<string, unknown> = {
    bundled: report.bundled,
    applied: report.applied,
    pending: report.pending,
  };
  if (state === "uninitialized" || state === "behind") {
    details.hint = "run `npx runledger migrate` or `migrate(db)` against this database";
    return new SchemaCompatibilityError(state, { details });
  }
  if (report.foreign.length === 0) return new SchemaCompatibilityError(state, { details });
  details.foreign = report.foreign.map(({ id, hash, createdAt }) => ({ id, hash, createdAt }));
  details.hint =
    state === "ahead"
      ? "a newer runledger migrated this database; upgrade runledger, or remove the rows if they are your application's migrations"
      : `an application's own drizzle migrations belong in its own journal, not ${JOURNAL}; remove these rows and migrate with runledger's drizzle.config.ts or \`npx runledger migrate\``;
  const named = report.foreign.slice(0, 3).map(describeForeign);
  const more = report.foreign.length > 3 ? ` (and ${report.foreign.length - 3} more)` : "";
  const whose = state === "ahead" ? "one this version of runledger ships" : "one of runledger's";
  return new SchemaCompatibilityError(state, {
    details,
    reason: `${named.join("; ")}${more}: not ${whose}.`,
  });
}

function describeForeign(row: ForeignMigration): string {
  return `Migration ${row.id} in ${JOURNAL} (created_at ${row.createdAt}, hash ${row.hash.slice(0, 12)})`;
}

async function readJournal(executor: Executor): Promise<AppliedMigration[] | null> {
  const exists = await queryRows<{ regclass: string | null }>(executor, journalExists);
  if (exists[0]?.regclass == null) return null;
  const rows = await queryRows<{ id: number; hash: string; created_at: string | number | null }>(executor, journalRows);
  return rows.map((row) => ({ id: Number(row.id), hash: row.hash, createdAt: Number(row.created_at) }));
}

/** Compare the database's migration journal with the bundled migrations. Read-only; never throws for a state. */
export async function inspectSchema(executor: Executor): Promise<SchemaReport> {
  return translating(async () => {
    const applied = await executor.transaction(async (tx) => readJournal(tx), { accessMode: "read only" });
    return compare(bundledMigrations(), applied);
  });
}

/**
 * Check, without running any DDL, that the database has exactly the migrations this package
 * ships. Throws a `SchemaCompatibilityError` (`schema.uninitialized`, `schema.behind`,
 * `schema.ahead`, `schema.diverged`) otherwise; journal rows that are not runledger's are named
 * in its message ("Migration 1 in runledger.__drizzle_migrations (…): not one of runledger's.")
 * and listed in `details.foreign`. Worker processes call this instead of `migrate`.
 */
export async function ensureSchemaCompatible(executor: Executor): Promise<SchemaReport> {
  const report = await inspectSchema(executor);
  if (report.state !== "current") throw incompatible(report);
  return report;
}

/**
 * Apply the bundled migrations. Safe to call from many processes at once: the work runs in one
 * transaction under an advisory lock, so latecomers wait and then find nothing to do. Refuses a
 * database whose history is `ahead` of or `diverged` from this package.
 */
export async function migrate(executor: Executor): Promise<SchemaReport> {
  const bundled = bundledMigrations();
  return translating(
    () =>
      executor.transaction(async (tx) => {
        await tx.execute(migrationLock);
        await tx.execute(journalSchemaCreate);
        await tx.execute(journalTableCreate);
        const applied = (await readJournal(tx)) ?? [];
        const before = compare(bundled, applied);
        if (before.state === "ahead" || before.state === "diverged") throw incompatible(before);
        for (const migration of bundled.slice(applied.length)) {
          for (const statement of migration.sql) {
            if (statement.trim() !== "") await tx.execute(sql.raw(statement));
          }
          await tx.execute(journalInsert(migration.hash, migration.folderMillis));
        }
        return { state: "current" as const, bundled: bundled.length, applied: bundled.length, pending: 0, foreign: [] };
      }),
    "schema.migration_failed",
  );
}

/** A bundled migration `migrate` would apply, with its statements. */
export interface PendingMigration {
  /** Its file name without `.sql` (`0006_schedule_time_zones_and_job_keys`). */
  tag: string;
  hash: string;
  statements: string[];
}

/**
 * What `migrate` would do now, without doing it: the schema report and the bundled migrations it
 * would apply, in order, with their SQL. Read-only (never DDL); empty when the database is
 * current, `ahead` or `diverged` (which `migrate` refuses).
 */
export async function planMigrations(
  executor: Executor,
): Promise<{ report: SchemaReport; pending: PendingMigration[] }> {
  const report = await inspectSchema(executor);
  if (report.pending <= 0 || report.state === "ahead" || report.state === "diverged") return { report, pending: [] };
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8")) as {
    entries: { tag: string }[];
  };
  const pending = bundledMigrations()
    .map((migration, i) => ({
      tag: journal.entries[i]?.tag ?? String(i),
      hash: migration.hash,
      statements: migration.sql.filter((statement) => statement.trim() !== ""),
    }))
    .slice(report.applied);
  return { report, pending };
}
