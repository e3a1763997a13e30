import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { afterAll, describe, expect, it } from "vitest";
import {
  ALL_ORGANIZATIONS,
  isRunledgerError,
  type QueryError,
  SchemaCompatibilityError,
} from "../../src/core/index.ts";
import {
  createDb,
  ensureSchemaCompatible,
  inspectSchema,
  listJobSchedules,
  MIGRATIONS_FOLDER,
  migrate,
  queryRows,
  type RunledgerDb,
  toQueryError,
} from "../../src/store/index.ts";
import { completeJobSuccess, materializeDueSchedules } from "../../src/store/worker.ts";
import { resolveServerUrl } from "../../src/testing/index.ts";
import { adminClient, withDatabase } from "../../src/testing/server.ts";
import { finished, ROOT, run, startTs } from "../support/processes.ts";

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

/** Jobs of every shape the 0.1.0 ledger held (ids end in their letter). */
const LEGACY = {
  pending: "0190f0a0-0000-7000-8000-00000000000a",
  leased: "0190f0a0-0000-7000-8000-00000000000b",
  retriedThenSucceeded: "0190f0a0-0000-7000-8000-00000000000c",
  dead: "0190f0a0-0000-7000-8000-00000000000d",
  canceledWhileLeased: "0190f0a0-0000-7000-8000-00000000000e",
  requeuedAfterSuccess: "0190f0a0-0000-7000-8000-00000000000f",
};

const LEGACY_LEDGER = `
  insert into runledger.job_definitions (job_type) values ('legacy');
  insert into runledger.job_queue (id, job_type, status, run_number, attempt, max_attempts, worker_id,
    lease_expires_at, last_heartbeat_at, started_at, finished_at, stage, status_reason, last_error_code)
  values
    ('${LEGACY.pending}', 'legacy', 'PENDING', 1, 0, 3, null, null, null, null, null, 'queued', null, null),
    ('${LEGACY.leased}', 'legacy', 'LEASED', 1, 1, 3, 'w-old', now() + interval '1 hour', now(), now(), null, 'running', null, null),
    ('${LEGACY.retriedThenSucceeded}', 'legacy', 'SUCCEEDED', 1, 2, 3, null, null, null, now(), now(), 'completed', null, null),
    ('${LEGACY.dead}', 'legacy', 'DEAD_LETTERED', 1, 1, 3, null, null, null, now(), now(), 'running', 'TERMINAL', 'bad'),
    ('${LEGACY.canceledWhileLeased}', 'legacy', 'CANCELED', 1, 1, 3, null, null, null, now(), now(), 'running', 'op', null),
    ('${LEGACY.requeuedAfterSuccess}', 'legacy', 'PENDING', 2, 0, 3, null, null, null, null, null, 'queued', 'again', null);
  insert into runledger.job_events (job_id, run_number, attempt, event_type, stage, payload, occurred_at)
  select job_id::uuid, run_number, attempt, event_type::runledger.job_event_type, stage, payload::jsonb,
    now() - interval '1 hour' + n * interval '1 second'
  from (values
    (1, '${LEGACY.pending}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (2, '${LEGACY.leased}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (3, '${LEGACY.retriedThenSucceeded}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (4, '${LEGACY.leased}', 1, 1, 'LEASED', 'running', '{"worker_id":"w-old","lease_duration_seconds":60}'),
    (5, '${LEGACY.retriedThenSucceeded}', 1, 1, 'LEASED', 'running', '{"worker_id":"w1","lease_duration_seconds":30}'),
    (6, '${LEGACY.leased}', 1, 1, 'HEARTBEAT', null, '{"worker_id":"w-old"}'),
    (7, '${LEGACY.retriedThenSucceeded}', 1, 1, 'FAILED', 'running', '{"kind":"RETRYABLE","error_code":"x","error_message":"m"}'),
    (8, '${LEGACY.retriedThenSucceeded}', 1, 1, 'RETRY_SCHEDULED', 'running', '{"retry_delay_ms":1000}'),
    (9, '${LEGACY.retriedThenSucceeded}', 1, 2, 'LEASED', 'running', '{"worker_id":"w2","lease_duration_seconds":30}'),
    (10, '${LEGACY.retriedThenSucceeded}', 1, 2, 'SUCCEEDED', 'completed', '{}'),
    (11, '${LEGACY.dead}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (12, '${LEGACY.dead}', 1, 1, 'LEASED', 'running', '{"worker_id":"w3","lease_duration_seconds":30}'),
    (13, '${LEGACY.dead}', 1, 1, 'FAILED', 'running', '{"kind":"TERMINAL","error_code":"bad","error_message":"no"}'),
    (14, '${LEGACY.dead}', 1, 1, 'DEAD_LETTERED', 'running', '{"kind":"TERMINAL","error_code":"bad"}'),
    (15, '${LEGACY.canceledWhileLeased}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (16, '${LEGACY.canceledWhileLeased}', 1, 1, 'LEASED', 'running', '{"worker_id":"w4","lease_duration_seconds":30}'),
    (17, '${LEGACY.canceledWhileLeased}', 1, 1, 'CANCELED', 'running', '{"reason":"op"}'),
    (18, '${LEGACY.requeuedAfterSuccess}', 1, null, 'ENQUEUED', 'queued', '{"job_type":"legacy"}'),
    (19, '${LEGACY.requeuedAfterSuccess}', 1, 1, 'LEASED', 'running', '{"worker_id":"w5","lease_duration_seconds":30}'),
    (20, '${LEGACY.requeuedAfterSuccess}', 1, 1, 'SUCCEEDED', 'completed', '{}'),
    (21, '${LEGACY.requeuedAfterSuccess}', 2, null, 'REQUEUED', 'queued', '{"reason":"again"}')
  ) as e(n, job_id, run_number, attempt, event_type, stage, payload)
  order by n;
  insert into runledger.job_attempts (id, job_id, run_number, attempt, worker_id, leased_at, started_at, finished_at,
    outcome, error_code, error_message, retry_delay_ms, claim_origin, execution_started_persisted_at, created_at)
  values
    ('0190f0a0-0000-7000-8000-0000000001b1', '${LEGACY.leased}', 1, 1, 'w-old', now() - interval '50 minutes',
      now() - interval '50 minutes', null, null, null, null, null, 'DIRECT', now() - interval '50 minutes', now() - interval '50 minutes'),
    ('0190f0a0-0000-7000-8000-0000000001c1', '${LEGACY.retriedThenSucceeded}', 1, 1, 'w1', now() - interval '49 minutes',
      now() - interval '49 minutes', now() - interval '48 minutes', 'RETRYABLE', 'x', 'm', 1000, 'DIRECT', now() - interval '49 minutes', now() - interval '49 minutes'),
    ('0190f0a0-0000-7000-8000-0000000001c2', '${LEGACY.retriedThenSucceeded}', 1, 2, 'w2', now() - interval '47 minutes',
      now() - interval '47 minutes', now() - interval '46 minutes', null, null, null, null, 'WORKER_PRESTART', now() - interval '47 minutes', now() - interval '47 minutes'),
    ('0190f0a0-0000-7000-8000-0000000001d1', '${LEGACY.dead}', 1, 1, 'w3', now() - interval '45 minutes',
      now() - interval '45 minutes', now() - interval '44 minutes', 'TERMINAL', 'bad', 'no', null, 'DIRECT', now() - interval '45 minutes', now() - interval '45 minutes'),
    ('0190f0a0-0000-7000-8000-0000000001e1', '${LEGACY.canceledWhileLeased}', 1, 1, 'w4', now() - interval '43 minutes',
      now() - interval '43 minutes', now() - interval '42 minutes', null, null, null, null, 'DIRECT', now() - interval '43 minutes', now() - interval '43 minutes'),
    ('0190f0a0-0000-7000-8000-0000000001f1', '${LEGACY.requeuedAfterSuccess}', 1, 1, 'w5', now() - interval '41 minutes',
      now() - interval '41 minutes', now() - interval '40 minutes', null, null, null, null, 'DIRECT', now() - interval '41 minutes', now() - interval '41 minutes');
  update runledger.job_queue set finished_at = now() - interval '46 minutes'
  where id = '${LEGACY.retriedThenSucceeded}';
  -- 0.1.0 wrote a LEASED event in its claim's statement and a SUCCEEDED event in the job's.
  update runledger.job_events e set occurred_at = a.leased_at from runledger.job_attempts a
  where e.event_type = 'LEASED' and a.job_id = e.job_id and a.run_number = e.run_number and a.attempt = e.attempt;
  update runledger.job_events e set occurred_at = a.finished_at from runledger.job_attempts a
  where e.event_type = 'SUCCEEDED' and a.job_id = e.job_id and a.run_number = e.run_number and a.attempt = e.attempt;
  update runledger.job_queue j set finished_at = a.finished_at from runledger.job_attempts a
  where j.status = 'SUCCEEDED' and a.job_id = j.id and a.run_number = j.run_number and a.attempt = j.attempt;
`;

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
      .catch((e: unknown) => (toQueryError(e) as QueryError).sqlstate);
    expect(refused).toBe("23503");
    await db.execute(sql`delete from runledger.workflow_runs`);
    expect([await count("workflow_steps"), await count("workflow_step_dependencies")]).toEqual([0, 0]);
    const [job] = await queryRows<{ workflow_step_id: string | null }>(
      db,
      sql`select workflow_step_id from runledger.job_queue`,
    );
    expect(job!.workflow_step_id).toBeNull();
  });

  it("moves current attempts onto their job rows and shows the same ledger through the views", async () => {
    const { db } = await emptyDatabase();
    await db.transaction(async (tx) => {
      for (const migration of bundled.slice(0, 3)) {
        for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      }
      await tx.execute(
        sql`create table runledger.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
      );
      for (const migration of bundled.slice(0, 3)) {
        await tx.execute(
          sql`insert into runledger.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
        );
      }
      // The ledger as 0.1.0 wrote it: an attempt row per claim, an event row per transition.
      await tx.execute(sql.raw(LEGACY_LEDGER));
    });
    const events = `select id, job_id, run_number, attempt, event_type, stage, progress_done, progress_total, payload,
      occurred_at from runledger.job_events order by id`;
    const attempts = `select id, job_id, run_number, attempt, worker_id, leased_at, started_at, finished_at, outcome,
      error_code, error_message, retry_delay_ms, claim_origin, execution_started_persisted_at, created_at
      from runledger.job_attempts order by job_id, run_number, attempt`;
    const eventsBefore = await queryRows(db, sql.raw(events));
    const attemptsBefore = await queryRows<Record<string, unknown>>(db, sql.raw(attempts));
    await migrate(db);
    expect((await inspectSchema(db)).state).toBe("current");
    expect(await queryRows(db, sql.raw(events))).toEqual(eventsBefore);
    const attemptsAfter = await queryRows<Record<string, unknown>>(db, sql.raw(attempts));
    // The same attempts; those now held by job rows (running or successful) have derived ids.
    const withoutId = (rows: Record<string, unknown>[]) => rows.map(({ id: _, ...rest }) => rest);
    expect(withoutId(attemptsAfter)).toEqual(withoutId(attemptsBefore));
    const [moved] = await queryRows<{ rows: number; held: number }>(
      db,
      sql`select (select count(*)::int from runledger.job_attempt_log) as rows,
        (select count(*)::int from runledger.job_queue where lease_event_id is not null) as held`,
    );
    expect(moved).toEqual({ rows: attemptsBefore.length - 2, held: 2 });
    for (const { id } of attemptsAfter)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    // The running attempt carries on under the new code: it succeeds with its lease.
    await completeJobSuccess(db, { lease: { jobId: LEGACY.leased, runNumber: 1, attempt: 1, workerId: "w-old" } });
    const story = await queryRows<{ event_type: string }>(
      db,
      sql`select event_type from runledger.job_events where job_id = ${LEGACY.leased} order by id`,
    );
    expect(story.map((e) => e.event_type)).toEqual(["ENQUEUED", "LEASED", "HEARTBEAT", "SUCCEEDED"]);
  });

  it("upgrades schedules to time zones in place: existing rows keep UTC, ALLOW and their cursor, and fire as before", async () => {
    const { db } = await emptyDatabase();
    // Every migration before the one that brought time zones.
    const before = bundled.slice(
      0,
      bundled.findIndex((m) => m.sql.some((statement) => statement.includes('"next_slot_at"'))),
    );
    expect(before.length).toBeGreaterThanOrEqual(3);
    await db.transaction(async (tx) => {
      for (const migration of before) for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`create table runledger.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
      );
      for (const migration of before) {
        await tx.execute(
          sql`insert into runledger.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
        );
      }
      await tx.execute(
        sql.raw(`
        insert into runledger.job_definitions (job_type) values ('old.report');
        insert into runledger.job_schedules (id, name, job_type, payload_template, cron_expr, next_fire_at, max_jitter_seconds)
        values ('0190f0a0-0000-7000-8000-0000000000d1', 'old.hourly', 'old.report', '{"kind": "hourly"}', '0 0 * * * *',
          '2030-01-01T00:00:00Z', 0);`),
      );
    });
    await migrate(db);
    expect((await inspectSchema(db)).state).toBe("current");
    const [schedule] = (await listJobSchedules(db, { scope: ALL_ORGANIZATIONS, limit: 10 })).items;
    expect(schedule).toMatchObject({
      name: "old.hourly",
      timezone: "UTC",
      overlapPolicy: "ALLOW",
      catchupWindowSeconds: 0,
      isActive: true,
      nextSlotAt: new Date("2030-01-01T00:00:00Z"),
      nextFireAt: new Date("2030-01-01T00:00:00Z"),
      missedSlotCount: 0,
    });
    const { fired } = await materializeDueSchedules(db, { now: new Date("2030-01-01T00:00:30Z"), limit: 10 });
    expect(fired).toMatchObject([{ scheduleName: "old.hourly", scheduledFor: new Date("2030-01-01T00:00:00Z") }]);
  });

  it("reports a journal with unknown later migrations as ahead, naming them", async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    const when = Date.now() + 1e9;
    await db.execute(sql`insert into runledger.__drizzle_migrations (hash, created_at) values ('f00d', ${when})`);
    await expectState(db, "ahead");
    const id = bundled.length + 1;
    expect((await inspectSchema(db)).foreign).toEqual([{ id, hash: "f00d", createdAt: when }]);
    const error = await ensureSchemaCompatible(db).then(
      () => undefined,
      (e: unknown) => e as SchemaCompatibilityError,
    );
    expect(error?.message).toContain(
      `Migration ${id} in runledger.__drizzle_migrations (created_at ${when}, hash f00d): not one this version of runledger ships.`,
    );
  });

  it("reports a journal whose hashes differ as diverged, and migrate refuses it", async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    await db.execute(sql`update runledger.__drizzle_migrations set hash = 'changed' where id = 1`);
    await expectState(db, "diverged");
    await expect(migrate(db)).rejects.toMatchObject({ code: "schema.diverged" });
  });

  it("names an application's migrations applied into runledger's journal instead of a bare diverged", async () => {
    const { db } = await emptyDatabase();
    // What drizzle-kit did with a copy of the config whose `out` was the app's own folder.
    const app = [
      { hash: "a".repeat(64), when: 1_700_000_000_000 },
      { hash: "b".repeat(64), when: 1_700_000_100_000 },
    ];
    await db.execute(sql`create schema runledger`);
    await db.execute(
      sql`create table runledger.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
    );
    for (const { hash, when } of app) {
      await db.execute(sql`insert into runledger.__drizzle_migrations (hash, created_at) values (${hash}, ${when})`);
    }
    const report = await inspectSchema(db);
    expect(report).toMatchObject({ state: "diverged", applied: 2 });
    expect(report.foreign).toEqual([
      { id: 1, hash: app[0]!.hash, createdAt: app[0]!.when },
      { id: 2, hash: app[1]!.hash, createdAt: app[1]!.when },
    ]);
    for (const attempt of [ensureSchemaCompatible(db), migrate(db)]) {
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e as SchemaCompatibilityError,
      );
      expect(error).toBeInstanceOf(SchemaCompatibilityError);
      expect(error!.code).toBe("schema.diverged");
      expect(error!.message).toBe(
        "The runledger migration history does not match this version. " +
          "Migration 1 in runledger.__drizzle_migrations (created_at 1700000000000, hash aaaaaaaaaaaa); " +
          "Migration 2 in runledger.__drizzle_migrations (created_at 1700000100000, hash bbbbbbbbbbbb): " +
          "not one of runledger's.",
      );
      expect(error!.details).toMatchObject({ foreign: report.foreign, hint: expect.stringContaining("own journal") });
    }
    // migrate refused without touching anything.
    const rows = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runledger.__drizzle_migrations`);
    expect(rows[0]!.n).toBe(2);
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

  it("agrees with drizzle-kit migrate on the journal, run with the config from another directory", async () => {
    const { url, db } = await emptyDatabase();
    const elsewhere = mkdtempSync(join(tmpdir(), "runledger-kit-"));
    try {
      const kit = join(ROOT, "node_modules/drizzle-kit/bin.cjs");
      const config = join(ROOT, "drizzle.config.ts");
      const result = await run(
        process.execPath,
        [kit, "migrate", "--config", config],
        { DATABASE_URL: url },
        elsewhere,
      );
      expect(result.code, `${result.stdout}${result.stderr}`).toBe(0);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
    expect(await ensureSchemaCompatible(db)).toMatchObject({ state: "current" });
  });

  it("ships a first migration that tolerates the journal's schema existing", () => {
    const first = readFileSync(`${MIGRATIONS_FOLDER}/${"0000_baseline.sql"}`, "utf8");
    expect(first.startsWith('CREATE SCHEMA IF NOT EXISTS "runledger";')).toBe(true);
    const whens = bundled.map((m) => m.folderMillis);
    expect([...whens].sort((a, b) => a - b)).toEqual(whens);
  });
});
