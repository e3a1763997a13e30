// `statement()` sends its SQL through drizzle's session (`_.session.prepareQuery`), which drizzle
// types but does not document (see `sendPrepared` in src/store/query.ts). These tests fail if a
// drizzle release changes that: a statement must run on a db, in a transaction and in a
// savepoint, on the connection of each, prepared exactly when the handle says so.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Executor, queryRows } from "../../src/store/index.ts";
import { statement } from "../../src/store/query.ts";
import { useTestDatabase } from "../support/db.ts";

const { db, url } = await useTestDatabase({ max: 2 });
const pooled = createDb(url, { pooled: true, max: 2 });
afterAll(() => pooled.$runledger.close());

beforeAll(async () => {
  await db.execute(sql`create schema runledger_test`);
  await db.execute(sql`create table runledger_test.notes (id int primary key, body text not null)`);
});

const insertNote = statement<{ id: number; body: string }>(
  "runledger_test_insert_note",
  sql`insert into runledger_test.notes (id, body) values (${sql.placeholder("id")}::int, ${sql.placeholder("body")})
    returning id, body`,
);

const readSetting = statement<{ application_name: string; tag: string }>(
  "runledger_test_read_setting",
  sql`select current_setting('application_name') as application_name, ${sql.placeholder("tag")}::text as tag`,
);

async function noteIds(): Promise<number[]> {
  const rows = await queryRows<{ id: number }>(db, sql`select id from runledger_test.notes order by id`);
  return rows.map((row) => row.id);
}

/** Whether `text` is prepared on the connection `executor` runs on (a transaction keeps one). */
async function preparedHere(executor: Executor, text: string): Promise<boolean> {
  const rows = await queryRows<{ n: number }>(
    executor,
    sql`select count(*)::int as n from pg_prepared_statements where statement = ${text}`,
  );
  return rows[0]!.n > 0;
}

describe("statement", () => {
  it("runs on a db and returns raw rows with its placeholders filled", async () => {
    expect(await insertNote.run(db, { id: 1, body: "on the db" })).toEqual([{ id: 1, body: "on the db" }]);
    expect(await noteIds()).toEqual([1]);
  });

  it("runs inside a transaction and a savepoint, on their connection", async () => {
    await expect(
      db.transaction(async (tx) => {
        await insertNote.run(tx, { id: 2, body: "in a transaction" });
        await tx.execute(sql`set local application_name = 'runledger-statement-test'`);
        const [seen] = await readSetting.run(tx, { tag: "tx" });
        expect(seen).toEqual({ application_name: "runledger-statement-test", tag: "tx" });
        await tx
          .transaction(async (savepoint) => {
            await insertNote.run(savepoint, { id: 3, body: "in a savepoint" });
            savepoint.rollback();
          })
          .catch(() => {});
        await insertNote.run(tx, { id: 4, body: "after the savepoint" });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    // Everything ran inside the transaction: rolled back with it.
    expect(await noteIds()).toEqual([1]);

    await db.transaction(async (tx) => {
      await tx.transaction(async (savepoint) => {
        await insertNote.run(savepoint, { id: 5, body: "committed savepoint" });
      });
    });
    expect(await noteIds()).toEqual([1, 5]);
  });

  it("is prepared on the connection with a default handle, and not through a pooled one", async () => {
    expect(db.$runledger.prepare).toBe(true);
    await db.transaction(async (tx) => {
      await readSetting.run(tx, { tag: "prepared" });
      expect(await preparedHere(tx, readSetting.text)).toBe(true);
    });

    expect(pooled.$runledger.prepare).toBe(false);
    const [row] = await readSetting.run(pooled, { tag: "pooled" });
    expect(row!.tag).toBe("pooled");
    await pooled.transaction(async (tx) => {
      await readSetting.run(tx, { tag: "pooled tx" });
      expect(await preparedHere(tx, readSetting.text)).toBe(false);
    });
  });

  it("reports a failing statement as the driver's error, which the callers translate", async () => {
    await expect(insertNote.run(db, { id: 1, body: "again" })).rejects.toMatchObject({
      cause: { code: "23505" },
    });
  });
});
