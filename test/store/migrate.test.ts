import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { afterAll, describe, expect, it } from "vitest";
import { isRunledgerError, SchemaCompatibilityError } from "../../src/core/index.ts";
import {
  createDb,
  ensureSchemaCompatible,
  inspectSchema,
  MIGRATIONS_FOLDER,
  migrate,
  queryRows,
  type RunledgerDb,
} from "../../src/store/index.ts";
import { resolveServerUrl } from "../../src/testing/index.ts";
import { adminClient, withDatabase } from "../../src/testing/server.ts";
import { finished, run, startTs } from "../support/processes.ts";

const serverUrl = await resolveServerUrl();
const created: string[] = [];
const handles: RunledgerDb[] = [];

/** An empty database (not from the template): these tests are about getting the schema in. */
async function emptyDatabase(): Promise<{ url: string; db: RunledgerDb }> {
  const name = `runledger_mig_${Math.random().toString(36).slice(2, 10)}`;
  const admin = adminClient(serverUrl);
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  created.push(name);
  const url = withDatabase(serverUrl, name);
  const db = createDb(url, { max: 2 });
  handles.push(db);
  return { url, db };
}

afterAll(async () => {
  await Promise.all(handles.map((db) => db.$runledger.close()));
  const admin = adminClient(serverUrl);
  for (const name of created) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

async function expectState(db: RunledgerDb, state: string) {
  const error = await ensureSchemaCompatible(db).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SchemaCompatibilityError);
  expect(isRunledgerError(error, `schema.${state}` as never)).toBe(true);
  expect((error as SchemaCompatibilityError).state).toBe(state);
}

const bundled = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });

describe("migrations", () => {
  it("reports an empty database as uninitialized", async () => {
    const { db } = await emptyDatabase();
    expect((await inspectSchema(db)).state).toBe("uninitialized");
    await expectState(db, "uninitialized");
  });

  it("migrates everything into schema runledger and nothing into public", async () => {
    const { db } = await emptyDatabase();
    const report = await migrate(db);
    expect(report.state).toBe("current");
    expect(await ensureSchemaCompatible(db)).toMatchObject({ state: "current", pending: 0 });

    const tables = await queryRows<{ schema: string; name: string }>(
      db,
      sql`select table_schema as schema, table_name as name from information_schema.tables where table_schema in ('public', 'runledger') order by 2`,
    );
    expect(tables.filter((t) => t.schema === "public")).toEqual([]);
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        "__drizzle_migrations",
        "job_attempts",
        "job_dead_letters",
        "job_definitions",
        "job_events",
        "job_logs",
        "job_metrics_rollup",
        "job_queue",
        "job_runtime_configs",
        "job_schedules",
        "workflow_run_mutations",
        "workflow_runs",
        "workflow_step_dependencies",
        "workflow_steps",
      ]),
    );
    // A second run finds nothing to do.
    expect((await migrate(db)).state).toBe("current");
  });

  it("reports a database missing later migrations as behind, and migrate brings it current", async () => {
    const { db } = await emptyDatabase();
    const first = bundled[0]!;
    await db.transaction(async (tx) => {
      for (const statement of first.sql) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`create table runledger.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
      );
      await tx.execute(
        sql`insert into runledger.__drizzle_migrations (hash, created_at) values (${first.hash}, ${first.folderMillis})`,
      );
    });
    expect(await inspectSchema(db)).toMatchObject({ state: "behind", pending: bundled.length - 1 });
    await expectState(db, "behind");
    await migrate(db);
    expect((await inspectSchema(db)).state).toBe("current");
  });

  it("upgrades a database holding jobs and a workflow run from the first two migrations", async () => {
    const { db } = await emptyDatabase();
    const [first, second] = bundled;
    await db.transaction(async (tx) => {
      for (const migration of [first!, second!]) {
        for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      }
      await tx.execute(
        sql`create table runledger.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
      );
      for (const migration of [first!, second!]) {
        await tx.execute(
          sql`insert into runledger.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
        );
      }
      await tx.execute(
        sql.raw(`
        insert into runledger.job_definitions (job_type) values ('old.type');
        insert into runledger.workflow_runs (id, workflow_type) values ('0190f0a0-0000-7000-8000-000000000001', 'old.flow');
        insert into runledger.workflow_steps (id, workflow_run_id, step_key, execution_kind, job_type, priority,
          max_attempts, timeout_seconds, stage)
        values ('0190f0a0-0000-7000-8000-0000000000a1', '0190f0a0-0000-7000-8000-000000000001', 'a', 'JOB', 'old.type', 1, 1, 60, 'queued'),
          ('0190f0a0-0000-7000-8000-0000000000b1', '0190f0a0-0000-7000-8000-000000000001', 'b', 'JOB', 'old.type', 1, 1, 60, 'queued');
        insert into runledger.workflow_step_dependencies (workflow_run_id, prerequisite_step_id, dependent_step_id)
        values ('0190f0a0-0000-7000-8000-000000000001', '0190f0a0-0000-7000-8000-0000000000a1', '0190f0a0-0000-7000-8000-0000000000b1');
        insert into runledger.job_queue (id, job_type, max_attempts, workflow_step_id)
        values ('0190f0a0-0000-7000-8000-0000000000c1', 'old.type', 1, '0190f0a0-0000-7000-8000-0000000000a1');
        update runledger.workflow_steps set job_id = '0190f0a0-0000-7000-8000-0000000000c1', status = 'ENQUEUED'
        where id = '0190f0a0-0000-7000-8000-0000000000a1';`),
      );
    });
    await migrate(db);
    expect((await inspectSchema(db)).state).toBe("current");
    const count = async (table: string) =>
      (await queryRows<{ n: number }>(db, sql.raw(`select count(*)::int as n from runledger.${table}`)))[0]!.n;
    expect([
      await count("job_queue"),
      await count("workflow_steps"),
      await count("workflow_step_dependencies"),
    ]).toEqual([1, 2, 1]);
    // The dropped keys' duties now fall to triggers.
    const refused = await db
      .execute(sql`delete from runledger.job_definitions where job_type = 'old.type'`)
      .catch((e: unknown) => (e as { cause?: { code?: string } }).cause?.code);
    expect(refused).toBe("23503");
    await db.execute(sql`delete from runledger.workflow_runs`);
    expect([await count("workflow_steps"), await count("workflow_step_dependencies")]).toEqual([0, 0]);
    const [job] = await queryRows<{ workflow_step_id: string | null }>(
      db,
      sql`select workflow_step_id from runledger.job_queue`,
    );
    expect(job!.workflow_step_id).toBeNull();
  });

  it("reports a journal with unknown later migrations as ahead", async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    await db.execute(
      sql`insert into runledger.__drizzle_migrations (hash, created_at) values ('f00d', ${Date.now() + 1e9})`,
    );
    await expectState(db, "ahead");
  });

  it("reports a journal whose hashes differ as diverged, and migrate refuses it", async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    await db.execute(sql`update runledger.__drizzle_migrations set hash = 'changed' where id = 1`);
    await expectState(db, "diverged");
    await expect(migrate(db)).rejects.toMatchObject({ code: "schema.diverged" });
  });

  it("lets four processes migrate one empty database at once", async () => {
    const { url, db } = await emptyDatabase();
    const results = await Promise.all(
      Array.from({ length: 4 }, () => finished(startTs("test/fixtures/migrate-once.ts", [url]))),
    );
    for (const result of results) {
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ state: "current" });
    }
    const journal = await queryRows<{ n: string }>(
      db,
      sql`select count(*)::text as n from runledger.__drizzle_migrations`,
    );
    expect(Number(journal[0]!.n)).toBe(bundled.length);
  });

  it("agrees with drizzle-kit migrate on the journal", async () => {
    const { url, db } = await emptyDatabase();
    const result = await run(process.execPath, ["node_modules/drizzle-kit/bin.cjs", "migrate"], { DATABASE_URL: url });
    expect(result.code).toBe(0);
    expect(await ensureSchemaCompatible(db)).toMatchObject({ state: "current" });
  });

  it("ships a first migration that tolerates the journal's schema existing", () => {
    const first = readFileSync(`${MIGRATIONS_FOLDER}/${"0000_baseline.sql"}`, "utf8");
    expect(first.startsWith('CREATE SCHEMA IF NOT EXISTS "runledger";')).toBe(true);
    const whens = bundled.map((m) => m.folderMillis);
    expect([...whens].sort((a, b) => a - b)).toEqual(whens);
  });
});
