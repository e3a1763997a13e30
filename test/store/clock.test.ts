import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { clockAt, clockNow, queryRows, statement } from "../../src/store/query.ts";
import { useTestDatabase } from "../support/db.ts";

const { db } = await useTestDatabase();

const readClock = statement<{ at: Date | string; server: boolean }>(
  "runledger_test_clock",
  sql`select ${clockNow} as at, ${clockNow} = now() as server`,
);

it("a statement acts at the server's time unless its caller passes `now`", async () => {
  const [server] = await readClock.run(db, {});
  expect(server!.server).toBe(true);

  const at = new Date("2031-05-06T07:08:09.123Z");
  const [given] = await readClock.run(db, { now: at });
  expect(given!.server).toBe(false);
  expect(new Date(String(given!.at)).toISOString()).toBe(at.toISOString());
  expect(readClock.bind({ now: at })).toEqual([at.toISOString(), at.toISOString()]);
  expect(readClock.bind({})).toEqual([null, null]);
});

it("an ad-hoc query takes the same clock", async () => {
  const at = new Date("2030-01-02T03:04:05.000Z");
  const [given] = await queryRows<{ at: string }>(db, sql`select (${clockAt(at)})::text as at`);
  expect(new Date(given!.at.replace(" ", "T").replace(/\+00$/, "Z")).toISOString()).toBe(at.toISOString());
  const [server] = await queryRows<{ same: boolean }>(db, sql`select ${clockAt(undefined)} = now() as same`);
  expect(server!.same).toBe(true);
});
