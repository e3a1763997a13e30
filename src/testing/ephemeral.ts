import { createHash, randomUUID } from "node:crypto";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { createDb, MIGRATIONS_FOLDER, migrate, type RunledgerDb } from "../store/index.ts";
import { adminClient, resolveServerUrl, withDatabase } from "./server.ts";

/** A fresh, migrated database of its own. */
export interface EphemeralDatabase {
  db: RunledgerDb;
  /** Connection URL of the new database, for child processes or drizzle-kit. */
  url: string;
  /** The database's name. */
  name: string;
  /** URL of the server it lives on (its maintenance database), for admin work. */
  serverUrl: string;
  /** Close `db` and drop the database (kept when `RUNLEDGER_KEEP_TEST_DB=1`). */
  teardown(): Promise<void>;
}

export interface EphemeralDatabaseOptions {
  /** Server URL; by default resolved from the environment (see `resolveServerUrl`). */
  serverUrl?: string;
  /** Pool size of the returned `db`. Default 10. */
  max?: number;
}

const TEMPLATE_LOCK = 8247619704570079091n;

/** Name of the migrated template for the migrations this package ships: a change makes a new one. */
export function templateName(): string {
  const hashes = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).map((m) => m.hash);
  return `runledger_tpl_${createHash("sha256").update(hashes.join(",")).digest("hex").slice(0, 16)}`;
}

/**
 * Create the migrated template database once per server. Concurrent callers (test workers,
 * processes) serialize on an advisory lock; the template is built under a temporary name and
 * renamed when complete, so nobody clones a half-migrated template.
 */
export async function ensureTemplate(serverUrl: string): Promise<string> {
  const name = templateName();
  const admin = adminClient(serverUrl);
  try {
    const exists = async () => (await admin`select 1 from pg_database where datname = ${name}`).length > 0;
    if (await exists()) return name;
    await admin`select pg_advisory_lock(${TEMPLATE_LOCK.toString()}::bigint)`;
    try {
      if (await exists()) return name;
      const building = `${name}_building`;
      await admin.unsafe(`drop database if exists "${building}" with (force)`);
      await admin.unsafe(`create database "${building}"`);
      const db = createDb(withDatabase(serverUrl, building), { max: 1 });
      try {
        await migrate(db);
      } finally {
        await db.$runledger.close();
      }
      await admin.unsafe(`alter database "${building}" rename to "${name}"`);
      await admin.unsafe(`alter database "${name}" with is_template true`);
      return name;
    } finally {
      await admin`select pg_advisory_unlock(${TEMPLATE_LOCK.toString()}::bigint)`;
    }
  } finally {
    await admin.end({ timeout: 1 });
  }
}

/**
 * A fresh, migrated database cloned from a template (milliseconds, not a migration run).
 * Uses `RUNLEDGER_TEST_DATABASE_URL` or `DATABASE_URL`, else the local default server, else
 * testcontainers when a Docker engine answers; otherwise throws an error saying how to
 * provide a server.
 */
export async function setupEphemeralDatabase(options: EphemeralDatabaseOptions = {}): Promise<EphemeralDatabase> {
  const serverUrl = options.serverUrl ?? (await resolveServerUrl());
  const template = await ensureTemplate(serverUrl);
  const name = `runledger_test_${randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const admin = adminClient(serverUrl);
  try {
    await admin.unsafe(`create database "${name}" template "${template}"`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const url = withDatabase(serverUrl, name);
  const db = createDb(url, { max: options.max ?? 10 });
  let tornDown = false;
  return {
    db,
    url,
    name,
    serverUrl,
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      await db.$runledger.close();
      if (process.env.RUNLEDGER_KEEP_TEST_DB === "1") return;
      const dropper = adminClient(serverUrl);
      try {
        await dropper.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await dropper.end({ timeout: 1 });
      }
    },
  };
}
