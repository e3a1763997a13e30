import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ensureSchemaCompatible, queryRows } from "../../src/store/index.ts";
import { ScopedEnv, setupEphemeralDatabase } from "../../src/testing/index.ts";
import { adminClient } from "../../src/testing/server.ts";

async function databaseExists(url: string, name: string): Promise<boolean> {
  const admin = adminClient(url);
  try {
    return (await admin`select 1 from pg_database where datname = ${name}`).length > 0;
  } finally {
    await admin.end();
  }
}

describe("setupEphemeralDatabase", () => {
  it("gives each caller its own migrated database and drops it on teardown", async () => {
    const [a, b] = await Promise.all([setupEphemeralDatabase(), setupEphemeralDatabase()]);
    expect(a.name).not.toBe(b.name);
    expect((await ensureSchemaCompatible(a.db)).state).toBe("current");
    await a.db.execute(sql`insert into runledger.job_definitions (job_type) values ('only.in.a')`);
    const inB = await queryRows(b.db, sql`select 1 from runledger.job_definitions where job_type = 'only.in.a'`);
    expect(inB).toEqual([]);

    await a.teardown();
    await b.teardown();
    expect(await databaseExists(a.serverUrl, a.name)).toBe(false);
    expect(await databaseExists(b.serverUrl, b.name)).toBe(false);
  });

  it("keeps the database when RUNLEDGER_KEEP_TEST_DB=1", async () => {
    const kept = await setupEphemeralDatabase();
    {
      using _env = new ScopedEnv({ RUNLEDGER_KEEP_TEST_DB: "1" });
      await kept.teardown();
    }
    expect(await databaseExists(kept.serverUrl, kept.name)).toBe(true);
    const admin = adminClient(kept.serverUrl);
    await admin.unsafe(`drop database "${kept.name}" with (force)`);
    await admin.end();
  });

  it("says how to provide a server when the configured one does not answer", async () => {
    using _env = new ScopedEnv({ RUNLEDGER_TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres" });
    await expect(setupEphemeralDatabase()).rejects.toThrow(/RUNLEDGER_TEST_DATABASE_URL or DATABASE_URL/);
  });
});

describe("ScopedEnv", () => {
  it("sets, unsets and restores variables", () => {
    const env: NodeJS.ProcessEnv = { KEEP: "old", GONE: "here" };
    const scope = new ScopedEnv({ KEEP: "new", GONE: undefined, ADDED: "x" }, env);
    expect(env).toEqual({ KEEP: "new", ADDED: "x" });
    scope.restore();
    expect(env).toEqual({ KEEP: "old", GONE: "here" });
    scope.restore();
    expect(env).toEqual({ KEEP: "old", GONE: "here" });
  });
});
